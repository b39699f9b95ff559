"""How a challenger's tool calls are compared with the champion's (``tool_trace``).

``report`` (the default) adds the differences to the summary and paths without
changing ``diverged``; ``diverge`` also counts them as divergence; ``off`` skips them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shadowstream.schemas.records import ResponseEvent
from shadowstream.stream_agents.comparators import ToolCallComparator, Verdict
from shadowstream.stream_agents.comparators.base import clip
from shadowstream.stream_agents.comparison_record import parse_output

ToolCallMode = str  # "off" | "report" | "diverge"


@dataclass(frozen=True, slots=True)
class ToolCallPolicy:
    mode: ToolCallMode = "report"
    comparator: ToolCallComparator = field(default_factory=ToolCallComparator)


def tool_call_verdict(
    policy: ToolCallPolicy, champion: ResponseEvent, challenger: ResponseEvent
) -> tuple[str, Verdict] | None:
    """(mode, verdict) when both sides report tool calls and they differ, else None."""
    if policy.mode == "off":
        return None
    a = _trace(champion)
    if a is None:
        return None
    b = _trace(challenger)
    if b is None:
        return None
    verdict = policy.comparator.compare(a, b)
    if not verdict.diverged:
        return None
    return policy.mode, verdict


def with_tool_calls(verdict: Verdict, mode: str, tools: Verdict) -> Verdict:
    """The outputs' verdict with the tool-call differences added (and counted, to diverge)."""
    paths = (*verdict.paths, *tools.paths)
    summary = clip(f"{verdict.summary}; {tools.summary}" if verdict.summary else tools.summary, 500)
    if mode == "diverge":
        return replace(verdict, diverged=True, score=max(verdict.score, tools.score),
                       summary=summary, paths=paths)  # fmt: skip
    return replace(verdict, summary=summary, paths=paths)


def _trace(event: ResponseEvent) -> Any:
    """A response's tool calls: its trace, ``[]`` if it reports zero calls, else None."""
    trace = event.get("tool_trace")
    if trace is not None:
        return parse_output(trace)
    return [] if _usage(event, "tool_calls") == 0 else None


def _usage(event: ResponseEvent | None, key: str) -> Any:
    if event is None:
        return None
    usage = event.get("usage")
    return usage.get(key) if usage else None
