"""What a report covers and shows: the options, and the grids its charts use."""

from __future__ import annotations

from dataclasses import dataclass, field

from shadowstream.analytics.llm import Prices
from shadowstream.analytics.resources import ResourceOptions

LATENCY_LEVELS = [0.005, *(i / 100 for i in range(1, 100)), 0.995, 0.999]
BUCKETS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800]
FINE_BUCKETS = [5, 10, 15, 30, 60]
# below a minute the series comes from `comparisons FINAL`: only for short, small ranges
FINE_MAX_SPAN_S = 30 * 60
FINE_MAX_COMPARISONS = 1_000_000


@dataclass(frozen=True)
class ReportOptions:
    control: str = "control"
    # the A/A controls (config order); each challenger is paired with its own endpoint
    # group's (analytics.pairing). Empty: just ``control``.
    controls: tuple[str, ...] = ()
    confidence: float = 0.95
    challengers: tuple[str, ...] = ()  # only these (the control still gives the floor)
    slices_per_challenger: int = 5
    min_slice_compared: int = 30
    examples_per_challenger: int = 5
    trace_url: str | None = None  # "...{trace_id}...": examples link to their traces
    charts: bool = False  # time series and latency distributions (HTML, JSON)
    max_buckets: int = 60
    resources: ResourceOptions = field(default_factory=ResourceOptions)  # limits, pricing
    sides: bool = False  # both answers of each example, diffed (HTML)
    live_prices: Prices = field(default_factory=dict)  # for batch runs without live data

    @property
    def control_names(self) -> tuple[str, ...]:
        return self.controls or (self.control,)
