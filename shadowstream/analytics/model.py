"""The report as data: plain dataclasses, rendered by the CLI (tables, JSON, CSV, HTML)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shadowstream.analytics.resource_model import (
    MeasureRow,
    MeasureSlice,
    Projection,
    ResourceRow,
    ResourceSlice,
)
from shadowstream.analytics.stats import Interval, wilson

if TYPE_CHECKING:
    from shadowstream.analytics.llm import CostComparison, JudgeSummary
    from shadowstream.analytics.sidebyside import SideBySide


@dataclass(frozen=True)
class Rate:
    """k events out of n, with a two-sided Wilson interval."""

    k: int
    n: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, k: int, n: int, confidence: float = 0.95) -> Rate:
        if n <= 0:
            return cls(k, n, None, None)
        ci = wilson(k, n, confidence)
        return cls(k, n, ci.low, ci.high)

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n > 0 else None


def ratio(total: float, n: int) -> float | None:
    return total / n if n > 0 else None


def finite(value: Any) -> float | None:
    """A float, or None for NULL / NaN (an empty quantile state gives NaN)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


@dataclass(frozen=True)
class Counts:
    """Everything ClickHouse sums for one (experiment, challenger)."""

    experiment_id: str
    challenger: str
    comparisons: int = 0
    late: int = 0
    both_answered: int = 0
    compared: int = 0
    diverged: int = 0
    divergence_score_sum: float = 0.0
    champion_ok: int = 0
    champion_errors: int = 0
    champion_timeouts: int = 0
    champion_missing: int = 0
    challenger_ok: int = 0
    challenger_errors: int = 0
    challenger_timeouts: int = 0
    challenger_missing: int = 0
    paired: int = 0
    paired_both_failed: int = 0
    paired_champion_only_failed: int = 0
    paired_challenger_only_failed: int = 0
    champion_format_checked: int = 0
    champion_format_invalid: int = 0
    challenger_format_checked: int = 0
    challenger_format_invalid: int = 0
    champion_tokens_in_sum: float = 0
    champion_tokens_in_n: int = 0
    champion_tokens_out_sum: float = 0
    champion_tokens_out_n: int = 0
    challenger_tokens_in_sum: float = 0
    challenger_tokens_in_n: int = 0
    challenger_tokens_out_sum: float = 0
    challenger_tokens_out_n: int = 0
    champion_tool_calls_sum: float = 0
    champion_tool_calls_n: int = 0
    challenger_tool_calls_sum: float = 0
    challenger_tool_calls_n: int = 0
    champion_cost_sum: float = 0.0
    champion_cost_n: int = 0
    challenger_cost_sum: float = 0.0
    challenger_cost_n: int = 0
    champion_latency_q: tuple[float | None, ...] = (None, None, None)
    challenger_latency_q: tuple[float | None, ...] = (None, None, None)
    first_minute: dt.datetime | None = None
    last_minute: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Counts:
        from shadowstream.analytics.queries import as_utc

        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name not in row:
                continue
            raw = row[item.name]
            if item.name.endswith("_latency_q"):
                values[item.name] = tuple(finite(v) for v in (raw or []))
            elif item.name.endswith("_minute"):
                values[item.name] = as_utc(raw)
            elif item.name in ("experiment_id", "challenger"):
                values[item.name] = str(raw)
            elif item.name.endswith("_sum"):
                values[item.name] = float(raw or 0)
            else:
                values[item.name] = int(raw or 0)
        return cls(**values)


@dataclass(frozen=True)
class Side:
    """One side (champion or challenger) of a challenger's comparisons."""

    ok: int
    errors: Rate
    timeouts: Rate
    missing: Rate
    invalid_format: Rate
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    tokens_in: float | None
    tokens_out: float | None
    tool_calls: float | None
    cost: float | None


@dataclass(frozen=True)
class NoiseFloor:
    """The challenger's divergence next to the control's (A/A) divergence."""

    control: str
    control_rate: Rate
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    significant: bool


@dataclass(frozen=True)
class LatencyDelta:
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p50_pct: float | None
    p95_pct: float | None
    p99_pct: float | None


@dataclass(frozen=True)
class ChallengerReport:
    experiment_id: str
    challenger: str
    is_control: bool
    comparisons: int
    late: int
    both_answered: int
    divergence: Rate
    mean_divergence_score: float | None
    floor: NoiseFloor | None
    champion: Side
    challenger_side: Side
    latency_delta: LatencyDelta
    # challenger failure rate minus champion's on the same requests (paired)
    failure_increase: float | None
    failure_increase_ci: Interval | None
    first_minute: dt.datetime | None
    last_minute: dt.datetime | None
    # the A/A control this challenger is paired with (its endpoint group's), "" if none
    control: str = ""
    # comparisons judged before the noise model of their endpoint was ready: left out
    # of divergence (diverged is null), counted here (see stream_agents.noise)
    provisional: int = 0
    # p95 of the paired control (the champion model on the shadow path), and the
    # challenger's p95 against it
    control_p95_ms: float | None = None
    p95_vs_control_pct: float | None = None


@dataclass(frozen=True)
class SliceRow:
    experiment_id: str
    challenger: str
    attribute: str
    value: str
    comparisons: int
    divergence: Rate
    rest_rate: float | None
    lift: float | None
    p_value: float | None  # one-sided, Bonferroni-adjusted over `tested` slices
    tested: int
    significant: bool
    failure_rate: float | None
    invalid_format_rate: float | None


@dataclass(frozen=True)
class Example:
    experiment_id: str
    challenger: str
    request_time: dt.datetime | None
    request_id: str
    kind: str
    endpoint: str
    challenger_status: str
    divergence_score: float | None
    diff_summary: str
    diff_paths: list[str]
    challenger_error: str | None
    attributes: dict[str, str]
    trace_id: str = ""  # OpenTelemetry trace of the request, if it had one
    trace_url: str = ""  # trace_url_template filled in


@dataclass(frozen=True)
class SeriesPoint:
    experiment_id: str
    challenger: str
    bucket: dt.datetime
    comparisons: int
    divergence: Rate
    failure_rate: float | None
    invalid_format_rate: float | None


@dataclass(frozen=True)
class LatencyCurve:
    experiment_id: str
    challenger: str
    levels: list[float]
    champion_ms: list[float | None]
    challenger_ms: list[float | None]


@dataclass
class Report:
    generated_at: dt.datetime
    database: str
    since: dt.datetime
    until: dt.datetime
    experiment: str
    control: str  # the controls, comma-separated (each challenger has its own: .control)
    confidence: float
    exact: bool
    challengers: list[ChallengerReport] = field(default_factory=list)
    slices: list[SliceRow] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    series: list[SeriesPoint] = field(default_factory=list)
    bucket_seconds: int = 60
    latency: list[LatencyCurve] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    # comparator measures, resources per request and the projected bill (report_extras.py)
    measures: list[MeasureRow] = field(default_factory=list)
    measure_slices: list[MeasureSlice] = field(default_factory=list)
    resources: list[ResourceRow] = field(default_factory=list)
    resource_slices: list[ResourceSlice] = field(default_factory=list)
    projections: list[Projection] = field(default_factory=list)
    # LLM sections (analytics/llm.py, analytics/sidebyside.py)
    judge: list[JudgeSummary] = field(default_factory=list)
    costs: list[CostComparison] = field(default_factory=list)
    sides: list[SideBySide] = field(default_factory=list)  # the examples, both answers

    @property
    def empty(self) -> bool:
        return not self.challengers


def to_jsonable(value: Any) -> Any:
    """Dataclasses -> dicts, datetimes -> ISO 8601, NaN -> None (for JSON/CSV)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Rate):
            out["value"] = value.value
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return finite(value)
    return value
