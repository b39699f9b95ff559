"""The ComparisonEvent record of one (request, challenger), from the joined events and
what the builder decided about them (see :mod:`shadowstream.stream_agents.comparison`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shadowstream.schemas.records import ComparisonEvent, Outcome, RequestEvent, ResponseEvent
from shadowstream.stream_agents.comparators import Verdict

_NO_USAGE: dict[str, Any] = {}
_NO_REQUEST: dict[str, Any] = {}
_HEX = "0123456789abcdef"


def parse_output(text: str | None) -> Any:
    """Outputs travel as JSON text; a non-JSON string is compared as that string."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def trace_ids(traceparent: str | None) -> tuple[str | None, str | None]:
    """(trace id, span id) of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``)."""
    if not traceparent or len(traceparent) != 55:
        return None, None
    trace_id, span_id = traceparent[3:35], traceparent[36:52]
    if trace_id.strip(_HEX) or span_id.strip(_HEX):  # a character that is not lowercase hex
        return None, None
    return trace_id, span_id


def comparison_record(
    request: RequestEvent | None,
    champion: ResponseEvent | None,
    challenger: ResponseEvent | None,
    name: str,
    outcome: Outcome,
    challenger_model: str,
    compared_at_us: int,
    verdict: Verdict | None,
    provisional: bool,
    summary: str,
    comparator_name: str,
    champion_valid: bool | None,
    challenger_valid: bool | None,
) -> ComparisonEvent:
    """The record; ``challenger_model`` names the model when the challenger never answered,
    a ``provisional`` verdict leaves ``diverged`` and the score null."""
    champion_latency = champion["latency_ms"] if champion is not None else None
    challenger_latency = challenger["latency_ms"] if challenger is not None else None
    if verdict is not None and verdict.by and verdict.by != comparator_name:
        comparator_name = f"{comparator_name}:{verdict.by}"
    source: Mapping[str, Any] = request if request is not None else _NO_REQUEST
    trace_id, span_id = trace_ids(source.get("traceparent"))
    response: Mapping[str, Any] = champion or challenger or _NO_REQUEST
    cu: Mapping[str, Any] = (champion.get("usage") if champion is not None else None) or _NO_USAGE
    lu: Mapping[str, Any] = (
        challenger.get("usage") if challenger is not None else None
    ) or _NO_USAGE
    return {
        "request_id": source.get("request_id") or response.get("request_id", ""),
        "challenger": name,
        "experiment_id": source.get("experiment_id") or response.get("experiment_id", "live"),
        "outcome": outcome,
        "service": source.get("service", ""),
        "endpoint": source.get("endpoint", ""),
        "champion_model": source.get("champion_model")
        or (champion["model"] if champion is not None else ""),
        "challenger_model": challenger["model"] if challenger is not None else challenger_model,
        "request_ts_us": source.get("timestamp_us") or response.get("timestamp_us", 0),
        "compared_at_us": compared_at_us,
        "champion_status": champion["status"] if champion is not None else "missing",
        "challenger_status": challenger["status"] if challenger is not None else "missing",
        "champion_latency_ms": champion_latency,
        "challenger_latency_ms": challenger_latency,
        "latency_delta_ms": challenger_latency - champion_latency
        if champion_latency is not None and challenger_latency is not None
        else None,
        "diverged": verdict.diverged if verdict is not None and not provisional else None,
        "divergence_score": verdict.score if verdict is not None and not provisional else None,
        "comparator": comparator_name,
        "diff_summary": summary,
        "diff_paths": list(verdict.paths) if verdict is not None else [],
        "ignored_paths": list(verdict.ignored) if verdict is not None else [],
        "champion_format_valid": champion_valid,
        "challenger_format_valid": challenger_valid,
        "champion_tokens_in": cu.get("tokens_in"),
        "champion_tokens_out": cu.get("tokens_out"),
        "challenger_tokens_in": lu.get("tokens_in"),
        "challenger_tokens_out": lu.get("tokens_out"),
        "champion_tool_calls": cu.get("tool_calls"),
        "challenger_tool_calls": lu.get("tool_calls"),
        "champion_cost": cu.get("cost"),
        "challenger_cost": lu.get("cost"),
        "champion_error": champion.get("error") if champion is not None else None,
        "challenger_error": challenger.get("error") if challenger is not None else None,
        "attributes": source.get("attributes") or {},
        "trace_id": trace_id,
        "span_id": span_id,
        "measures": dict(verdict.measures) if verdict is not None and verdict.measures else None,
        "noise_provisional": True if provisional else None,
    }
