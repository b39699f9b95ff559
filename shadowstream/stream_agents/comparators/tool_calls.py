"""Tool calls of agent/LLM answers: names, arguments and count, champion vs challenger.

Input is a response's ``tool_trace`` (decoded JSON). Accepted shapes, all
normalized to ``(name, arguments)`` calls in order:

* a list of calls ``[{"name": "search", "arguments": {...}, "result": ...}]``
  (``tool``/``tool_name`` for the name, ``args``/``input``/``parameters`` for
  the arguments also work);
* OpenAI style ``{"type": "function", "function": {"name", "arguments": "<json>"}}``
  (string arguments are decoded);
* Anthropic style ``{"type": "tool_use", "name", "input"}``;
* a chat transcript: messages carrying a ``tool_calls`` list are flattened;
  tool results and other entries without a name are skipped;
* an object with a ``tool_calls`` or ``calls`` list.

Ids and results are not compared: ids are random, and under record-replay
the results are the champion's.

Options: ``ordered`` (default true; false compares the calls as a multiset),
``compare_arguments`` (default true), ``ignore_arguments`` (globs inside the
arguments, e.g. ``$.request_id``), ``abs_tol`` / ``rel_tol`` for numeric
arguments. Paths look like ``tool_calls[1].name`` and
``tool_calls[1].arguments.query``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from shadowstream.stream_agents.comparators.base import IDENTICAL, Verdict, clip
from shadowstream.stream_agents.comparators.json_diff import JsonComparator

_NAME_KEYS = ("name", "tool", "tool_name")
_ARGUMENT_KEYS = ("arguments", "args", "input", "parameters", "params")
_PREFIX = "tool_calls"


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: Any = None


def parse_tool_trace(trace: Any) -> list[ToolCall] | None:
    """The calls in a trace, or None when the trace has no recognizable shape."""
    if isinstance(trace, str):
        try:
            trace = orjson.loads(trace)
        except orjson.JSONDecodeError:
            return None
    if isinstance(trace, dict):
        for key in ("tool_calls", "calls"):
            if isinstance(trace.get(key), list):
                trace = trace[key]
                break
        else:
            call = _call(trace)
            return [call] if call is not None else None
    if not isinstance(trace, list):
        return None
    calls: list[ToolCall] = []
    for item in trace:
        if not isinstance(item, dict):
            continue
        nested = item.get("tool_calls")
        if isinstance(nested, list):  # a chat message with tool calls
            calls.extend(c for c in map(_call, nested) if c is not None)
            continue
        content = item.get("content")
        if isinstance(content, list) and "role" in item:  # a message of content blocks
            calls.extend(c for c in map(_call, content) if c is not None)
            continue
        call = _call(item)
        if call is not None:
            calls.append(call)
    return calls


def _call(item: Any) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    if item.get("type") in ("tool_result", "function_call_output") or item.get("role") == "tool":
        return None
    source = item["function"] if isinstance(item.get("function"), dict) else item
    name = next((source[k] for k in _NAME_KEYS if isinstance(source.get(k), str)), None)
    if name is None:
        return None
    arguments = next((source[k] for k in _ARGUMENT_KEYS if k in source), None)
    if isinstance(arguments, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            arguments = orjson.loads(arguments)
    return ToolCall(name, arguments)


class ToolCallComparator:
    name = "tool_calls"

    def __init__(
        self,
        *,
        ordered: bool = True,
        compare_arguments: bool = True,
        ignore_arguments: Iterable[str] = (),
        abs_tol: float = 0.0,
        rel_tol: float = 0.0,
        max_paths: int = 20,
    ) -> None:
        self.ordered = ordered
        self.compare_arguments = compare_arguments
        self.max_paths = max_paths
        self._arguments = JsonComparator(
            ignore_paths=ignore_arguments, abs_tol=abs_tol, rel_tol=rel_tol, max_paths=max_paths
        )

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        """Compare two tool traces (raw or already parsed into ToolCall lists)."""
        a = champion if _parsed(champion) else parse_tool_trace(champion)
        b = challenger if _parsed(challenger) else parse_tool_trace(challenger)
        if a is None or b is None:
            side = "champion" if a is None else "challenger"
            return Verdict(None, 0.0, f"{side} tool trace not recognized")
        if not a and not b:
            return IDENTICAL
        paths = self._ordered_diff(a, b) if self.ordered else self._unordered_diff(a, b)
        if not paths:
            return Verdict(False, 0.0, f"same {len(a)} tool calls")
        longest = max(len(a), len(b))
        differing = len({p.split("]", 1)[0] for p in paths})
        names = f"{_names(a)} vs {_names(b)}"
        count = f"{len(a)} vs {len(b)} calls" if len(a) != len(b) else f"{len(a)} calls"
        shown = paths[: self.max_paths]
        return Verdict(
            True,
            min(1.0, differing / longest),
            clip(f"tool calls differ ({count}: {names}): {', '.join(shown)}"),
            tuple(shown),
        )

    def _arguments_diff(self, index: int, a: ToolCall, b: ToolCall) -> list[str]:
        if not self.compare_arguments:
            return []
        verdict = self._arguments.compare(a.arguments, b.arguments)
        prefix = f"{_PREFIX}[{index}].arguments"
        if not verdict.diverged:
            return []
        return [prefix + p[1:] for p in verdict.paths] or [prefix]

    def _ordered_diff(self, a: list[ToolCall], b: list[ToolCall]) -> list[str]:
        paths: list[str] = []
        for i in range(max(len(a), len(b))):
            if i >= len(a) or i >= len(b):
                paths.append(f"{_PREFIX}[{i}]")
            elif a[i].name != b[i].name:
                paths.append(f"{_PREFIX}[{i}].name")
            else:
                paths.extend(self._arguments_diff(i, a[i], b[i]))
        return paths

    def _unordered_diff(self, a: list[ToolCall], b: list[ToolCall]) -> list[str]:
        remaining = list(enumerate(b))
        paths: list[str] = []
        for i, call in enumerate(a):
            same_name = [(j, c) for j, c in remaining if c.name == call.name]
            match = next(
                ((j, c) for j, c in same_name if not self._arguments_diff(i, call, c)), None
            )
            if match is None and same_name:
                j, c = same_name[0]
                paths.extend(self._arguments_diff(i, call, c))
                remaining.remove((j, c))
            elif match is None:
                paths.append(f"{_PREFIX}[{i}].name")
            else:
                remaining.remove(match)
        paths.extend(f"{_PREFIX}[{j}]" for j, _ in remaining)
        return paths


def _parsed(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(c, ToolCall) for c in value)


def _names(calls: list[ToolCall], limit: int = 6) -> str:
    names = [c.name for c in calls[:limit]]
    more = f", +{len(calls) - limit}" if len(calls) > limit else ""
    return "[" + ", ".join(names) + more + "]"
