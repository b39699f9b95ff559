"""Turn a joined (request, champion, challenger) into a ComparisonEvent record."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from stream_agents.comparators import Comparator, JsonComparator, Verdict

Event = dict[str, Any]
# output -> True (valid) / False (invalid); None when no format is declared
FormatCheck = Callable[[Any], bool]

_UNPARSABLE = object()


def parse_output(text: str | None) -> Any:
    """Outputs travel as JSON text; a non-JSON string is compared as that string."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _usage(event: Event | None, key: str) -> Any:
    if event is None:
        return None
    usage = event.get("usage")
    return usage.get(key) if usage else None


class ComparisonBuilder:
    """Callable the join engine uses to build each comparison.

    ``comparators`` maps challenger name to its comparator; ``format_checks``
    maps challenger name to a validator of output format (applied to both
    sides: the champion's output is checked against the same declared format).
    """

    def __init__(
        self,
        comparators: Mapping[str, Comparator],
        format_checks: Mapping[str, FormatCheck] | None = None,
        models: Mapping[str, str] | None = None,
        default: Comparator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.comparators = dict(comparators)
        self.format_checks = dict(format_checks or {})
        self.models = dict(models or {})
        self.default = default or JsonComparator()
        self._clock = clock

    def comparator_for(self, challenger: str) -> Comparator:
        return self.comparators.get(challenger, self.default)

    def __call__(
        self,
        request: Event | None,
        champion: Event | None,
        challenger: Event | None,
        name: str,
        outcome: str,
    ) -> Event:
        champion_status = champion["status"] if champion is not None else "missing"
        challenger_status = challenger["status"] if challenger is not None else "missing"
        champion_latency = champion["latency_ms"] if champion is not None else None
        challenger_latency = challenger["latency_ms"] if challenger is not None else None
        comparator = self.comparator_for(name)

        verdict: Verdict | None = None
        champion_valid: bool | None = None
        challenger_valid: bool | None = None
        check = self.format_checks.get(name)
        if champion is not None and challenger is not None:
            champion_out = parse_output(champion["output"])
            challenger_out = parse_output(challenger["output"])
            if check is not None:
                if champion_status == "ok":
                    champion_valid = check(champion_out)
                if challenger_status == "ok":
                    challenger_valid = check(challenger_out)
            if champion_status == "ok" and challenger_status == "ok":
                try:
                    verdict = comparator.compare(champion_out, challenger_out)
                except Exception as exc:  # a comparator bug must not stop the join
                    verdict = Verdict(None, 0.0, f"comparator error: {type(exc).__name__}: {exc}")
        elif check is not None:
            if champion is not None and champion_status == "ok":
                champion_valid = check(parse_output(champion["output"]))
            if challenger is not None and challenger_status == "ok":
                challenger_valid = check(parse_output(challenger["output"]))

        source = request or {}
        response = champion or challenger or {}
        return {
            "request_id": source.get("request_id") or response.get("request_id", ""),
            "challenger": name,
            "experiment_id": source.get("experiment_id") or response.get("experiment_id", "live"),
            "outcome": outcome,
            "service": source.get("service", ""),
            "endpoint": source.get("endpoint", ""),
            "champion_model": source.get("champion_model")
            or (champion["model"] if champion is not None else ""),
            "challenger_model": challenger["model"]
            if challenger is not None
            else self.models.get(name, name),
            "request_ts_us": source.get("timestamp_us") or response.get("timestamp_us", 0),
            "compared_at_us": int(self._clock() * 1_000_000),
            "champion_status": champion_status,
            "challenger_status": challenger_status,
            "champion_latency_ms": champion_latency,
            "challenger_latency_ms": challenger_latency,
            "latency_delta_ms": challenger_latency - champion_latency
            if champion_latency is not None and challenger_latency is not None
            else None,
            "diverged": verdict.diverged if verdict is not None else None,
            "divergence_score": verdict.score if verdict is not None else None,
            "comparator": comparator.name,
            "diff_summary": verdict.summary if verdict is not None else "",
            "diff_paths": list(verdict.paths) if verdict is not None else [],
            "ignored_paths": list(verdict.ignored) if verdict is not None else [],
            "champion_format_valid": champion_valid,
            "challenger_format_valid": challenger_valid,
            "champion_tokens_in": _usage(champion, "tokens_in"),
            "champion_tokens_out": _usage(champion, "tokens_out"),
            "challenger_tokens_in": _usage(challenger, "tokens_in"),
            "challenger_tokens_out": _usage(challenger, "tokens_out"),
            "champion_tool_calls": _usage(champion, "tool_calls"),
            "challenger_tool_calls": _usage(challenger, "tool_calls"),
            "champion_cost": _usage(champion, "cost"),
            "challenger_cost": _usage(challenger, "cost"),
            "champion_error": champion.get("error") if champion is not None else None,
            "challenger_error": challenger.get("error") if challenger is not None else None,
            "attributes": source.get("attributes") or {},
        }
