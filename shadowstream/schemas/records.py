"""Typed event records: one TypedDict per record of the Avro event schemas.

Generated from shadowstream/schemas/avro/*.avsc by ``python -m
shadowstream.schemas.record_types``; do not edit (a unit test compares the two).
A field with a default may be left out by a writer (NotRequired); a decoded event
always has every field.
"""

# no `from __future__ import annotations`: the TypedDicts' required and optional keys
# must be known at run time too (__required_keys__, __optional_keys__)
from typing import Literal, NotRequired, TypedDict


class RequestEvent(TypedDict):
    """A production request, emitted when the service receives it. Keyed by request_id."""

    # Unique per request; the join key.
    request_id: str
    # Epoch microseconds when the service received the request.
    timestamp_us: int
    service: str
    endpoint: str
    # Model id that answered in production.
    champion_model: str
    # Input payload as JSON text.
    payload: str
    # Input traits used to slice results: language, tenant tier, prompt template version,
    # input length bucket, ...
    attributes: NotRequired[dict[str, str]]
    # 'live' or the id of a batch experiment.
    experiment_id: NotRequired[str]
    # W3C traceparent of the OpenTelemetry span active when the service emitted the request
    # (v2).
    traceparent: NotRequired[str | None]


Role = Literal["champion", "challenger"]


Status = Literal["ok", "error", "timeout", "skipped"]


class Usage(TypedDict):
    """The Avro record Usage."""

    tokens_in: NotRequired[int | None]
    tokens_out: NotRequired[int | None]
    tool_calls: NotRequired[int | None]
    cost: NotRequired[float | None]


class ResponseEvent(TypedDict):
    """One model's answer to a request: the champion's (from the service) or a challenger's (from
    a worker). Keyed by request_id.
    """

    request_id: str
    # Epoch microseconds when the answer was complete.
    timestamp_us: int
    role: Role
    # Challenger name; empty for the champion.
    challenger: NotRequired[str]
    # Model id that produced the output.
    model: str
    # Output as JSON text; null when there is none (error, timeout).
    output: NotRequired[str | None]
    latency_ms: float
    # skipped: the worker deliberately did not call the model (cancelled batch); not a failure
    status: Status
    error: NotRequired[str | None]
    usage: Usage
    # JSON list of the tool calls made and their results, for record-replay and tool-call
    # comparison.
    tool_trace: NotRequired[str | None]
    experiment_id: NotRequired[str]


Outcome = Literal["both_answered", "challenger_missing", "champion_missing", "both_missing", "late"]


class ComparisonEvent(TypedDict):
    """The champion/challenger comparison for one (request, challenger). Keyed by request_id."""

    request_id: str
    challenger: str
    experiment_id: NotRequired[str]
    outcome: Outcome
    service: NotRequired[str]
    endpoint: NotRequired[str]
    champion_model: NotRequired[str]
    challenger_model: NotRequired[str]
    # The request's timestamp (epoch microseconds).
    request_ts_us: int
    # When the join emitted this comparison; later wins in ClickHouse.
    compared_at_us: int
    # ok | error | timeout | missing
    champion_status: str
    # ok | error | timeout | missing
    challenger_status: str
    champion_latency_ms: NotRequired[float | None]
    challenger_latency_ms: NotRequired[float | None]
    # challenger - champion
    latency_delta_ms: NotRequired[float | None]
    # null when there was nothing to compare
    diverged: NotRequired[bool | None]
    # 0 = identical, 1 = completely different
    divergence_score: NotRequired[float | None]
    comparator: NotRequired[str]
    diff_summary: NotRequired[str]
    diff_paths: NotRequired[list[str]]
    # Paths excluded from divergence (configured or learned as noisy).
    ignored_paths: NotRequired[list[str]]
    champion_format_valid: NotRequired[bool | None]
    challenger_format_valid: NotRequired[bool | None]
    champion_tokens_in: NotRequired[int | None]
    champion_tokens_out: NotRequired[int | None]
    challenger_tokens_in: NotRequired[int | None]
    challenger_tokens_out: NotRequired[int | None]
    champion_tool_calls: NotRequired[int | None]
    challenger_tool_calls: NotRequired[int | None]
    champion_cost: NotRequired[float | None]
    challenger_cost: NotRequired[float | None]
    champion_error: NotRequired[str | None]
    challenger_error: NotRequired[str | None]
    attributes: NotRequired[dict[str, str]]
    # The request's OpenTelemetry trace id (32 hex), if it had one (v2).
    trace_id: NotRequired[str | None]
    # The span that emitted the request (16 hex) (v2).
    span_id: NotRequired[str | None]
    # Named values a comparator measured (ranked lists: rbo@10,p=0.9, jaccard@10, ...).
    measures: NotRequired[dict[str, float] | None]
    # Judged before the endpoint's noise model was ready: diverged is null (left out of
    # divergence).
    noise_provisional: NotRequired[bool | None]
    # LLM judge, challenger vs champion: better | same | worse | undecided (the two orders
    # disagree) | skipped | error
    judge_verdict: NotRequired[str | None]
    judge_rationale: NotRequired[str | None]


class DeadLetterEvent(TypedDict):
    """A message a stage could not process, with its original bytes and where it came from."""

    source_topic: str
    source_partition: int
    source_offset: int
    # router | challenger:<name> | sink
    stage: str
    # not_avro | truncated | unknown_schema | wrong_event_type | missing_request_id |
    # oversized | invalid
    reason: str
    detail: NotRequired[str]
    timestamp_us: int
    original_key: NotRequired[bytes | None]
    original_value: NotRequired[bytes | None]


class StatsEvent(TypedDict):
    """Counter increments an agent instance reports periodically (fan-out decisions, join
    outcomes, worker results). Summed in ClickHouse.
    """

    # Random id of the reporting process.
    instance: str
    # Per-instance sequence number: a redelivered event is stored once.
    seq: int
    timestamp_us: int
    # router | challenger | sink
    stage: str
    challenger: NotRequired[str]
    # Increments since the previous report.
    counters: dict[str, int]
