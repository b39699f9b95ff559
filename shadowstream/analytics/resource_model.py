"""Report data for comparator measures, resources per request and the projected bill.

Plain dataclasses, like ``model.py``; rendered by the CLI (tables, JSON, CSV)
and the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shadowstream.analytics.distribution import Histogram, Moments

METRICS = ("tokens_in", "tokens_out", "tool_calls", "cost")
INTEGER_METRICS = frozenset({"tokens_in", "tokens_out", "tool_calls"})
Metric = Literal["tokens_in", "tokens_out", "tool_calls", "cost"]


@dataclass(frozen=True)
class Spread:
    """One distribution: count, mean with its interval, and quantiles."""

    n: int
    mean: float | None
    mean_low: float | None
    mean_high: float | None
    p10: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    histogram: Histogram = field(repr=False)
    moments: Moments = field(repr=False, default=Moments(0, 0.0, 0.0))


@dataclass(frozen=True)
class MeasureRow:
    """The distribution of one measure (``rbo@10,p=0.9``, ...) for one challenger."""

    experiment_id: str
    challenger: str
    measure: str
    spread: Spread


@dataclass(frozen=True)
class MeasureSlice:
    """One measure in one attribute slice, against the challenger's other requests."""

    experiment_id: str
    challenger: str
    measure: str
    attribute: str
    value: str
    spread: Spread
    rest_mean: float | None
    difference: float | None  # slice mean - rest mean
    p_value: float | None  # one-sided (slice lower), Bonferroni over `tested`
    tested: int
    significant: bool


@dataclass(frozen=True)
class OverLimit:
    """Responses above a user-set limit: a share with its Wilson interval."""

    limit: float
    count: float
    n: int
    share: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class SideUsage:
    """One side's distribution of one metric."""

    spread: Spread
    over_limit: OverLimit | None


@dataclass(frozen=True)
class ResourceRow:
    """Tokens in/out, tool calls or cost per request, champion and challenger."""

    experiment_id: str
    challenger: str
    metric: str
    champion: SideUsage | None
    challenger_side: SideUsage | None
    p95_change_pct: float | None  # challenger p95 / champion p95 - 1, in %


@dataclass(frozen=True)
class ResourceSlice:
    experiment_id: str
    challenger: str
    attribute: str
    value: str
    metric: str
    champion: SideUsage | None
    challenger_side: SideUsage | None
    p95_change_pct: float | None


@dataclass(frozen=True)
class Amount:
    """A projected total per day, with its interval (from the sample)."""

    per_request: float | None
    per_day: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class MetricProjection:
    metric: str
    champion: Amount
    challenger: Amount
    difference: Amount  # challenger - champion, paired where both reported (cost)
    reported_share: float | None  # challenger responses that reported the metric


@dataclass(frozen=True)
class Projection:
    """What the challenger would use and cost per day if promoted, next to the champion."""

    experiment_id: str
    challenger: str
    requests_per_day: float | None
    rate_source: str  # how the live request rate was corrected for sampling
    sample_fraction: float | None
    days_per_month: float
    metrics: list[MetricProjection]
    batch_price_factor: float | None = None  # batch experiments: cost at the batch price
    note: str = ""
