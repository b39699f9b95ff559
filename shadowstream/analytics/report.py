"""Build the report: a few SQL queries over the rollups, statistics in Python.

SQL lives in ``shadowstream/analytics/sql/*.sql``; every filter is a bound parameter. The
queries read the per-minute rollups (see sinks/clickhouse/sql/0004_rollups.sql),
so a report costs the same whether the range holds a thousand comparisons or
ten million; ``exact=True`` recomputes the same numbers from ``comparisons FINAL``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shadowstream.analytics.llm import Prices, fetch_costs, fetch_judge
from shadowstream.analytics.model import (
    ChallengerReport,
    Counts,
    Example,
    LatencyCurve,
    LatencyDelta,
    NoiseFloor,
    Rate,
    Report,
    SeriesPoint,
    Side,
    SliceRow,
    finite,
    ratio,
)
from shadowstream.analytics.pairing import endpoint_mix, pair_controls
from shadowstream.analytics.queries import (
    EPOCH,
    FAR_FUTURE,
    Scope,
    TimeRange,
    as_utc,
    load_sql,
    require_schema,
)
from shadowstream.analytics.report_extras import fill_extras
from shadowstream.analytics.resources import ResourceOptions
from shadowstream.analytics.sidebyside import fetch_sides
from shadowstream.analytics.stats import (
    bonferroni,
    newcombe_diff,
    newcombe_paired_diff,
    two_proportion_test,
    two_sided_z,
)
from shadowstream.warehouse.client import Warehouse

__all__ = [
    "EPOCH",
    "FAR_FUTURE",
    "ReportOptions",
    "TimeRange",
    "build_report",
    "fetch_counts",
    "summary",
]

LATENCY_LEVELS = [0.005, *(i / 100 for i in range(1, 100)), 0.995, 0.999]
BUCKETS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800]
FINE_BUCKETS = [5, 10, 15, 30, 60]
# below a minute the series comes from `comparisons FINAL`: only for short, small ranges
FINE_MAX_SPAN_S = 30 * 60
FINE_MAX_COMPARISONS = 1_000_000

Progress = Callable[[str], None]


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


class _Timer:
    def __init__(self, report: Report, progress: Progress | None) -> None:
        self.report = report
        self.progress = progress

    def run(self, label: str, fn: Callable[[], Any]) -> Any:
        if self.progress is not None:
            self.progress(label)
        start = time.perf_counter()
        result = fn()
        self.report.timings_ms[label] = round((time.perf_counter() - start) * 1000, 1)
        return result


def fetch_counts(scope: Scope) -> list[Counts]:
    """Per (experiment, challenger) counts and latency quantiles in the scope."""
    return [Counts.from_row(row) for row in scope.run("challengers").dicts()]


def fetch_provisional(scope: Scope) -> dict[tuple[str, str], int]:
    """Comparisons left out of divergence because the noise model was not ready yet."""
    return {
        (str(r["experiment_id"]), str(r["challenger"])): int(r["provisional"])
        for r in scope.run("provisional").dicts()
    }


def build_report(
    scope: Scope, options: ReportOptions | None = None, progress: Progress | None = None
) -> Report:
    options = options or ReportOptions()
    require_schema(scope.warehouse)
    scope = Scope(scope.warehouse, scope.window.snapped(), scope.experiment, scope.exact)
    report = Report(
        generated_at=dt.datetime.now(dt.UTC),
        database=scope.warehouse.database,
        since=scope.window.since,
        until=scope.window.until,
        experiment=scope.experiment,
        control=", ".join(options.control_names),
        confidence=options.confidence,
        exact=scope.exact,
    )
    timer = _Timer(report, progress)
    counts = timer.run("challengers", lambda: fetch_counts(scope))
    by_key = {(c.experiment_id, c.challenger): c for c in counts}
    controls = options.control_names
    several = len({c.challenger for c in counts if c.challenger in controls}) > 1
    mix = timer.run("pairing", lambda: endpoint_mix(scope)) if several else {}
    pairs = pair_controls(by_key, controls, mix)
    provisional = timer.run("provisional", lambda: fetch_provisional(scope))
    wanted = set(options.challengers)
    shown = [c for c in counts if not wanted or c.challenger in wanted]
    report.challengers = []
    for c in shown:
        key = (c.experiment_id, c.challenger)
        paired = pairs.get(key, "")
        row = challenger_report(c, by_key.get((c.experiment_id, paired)), options, paired)
        report.challengers.append(dataclasses.replace(row, provisional=provisional.get(key, 0)))
    if not shown:
        return report
    names = sorted(wanted)
    totals = {(c.experiment_id, c.challenger): c for c in shown}
    report.slices = timer.run("slices", lambda: fetch_slices(scope, options, names, totals))
    report.examples = timer.run("examples", lambda: fetch_examples(scope, options, names))
    fill_extras(report, scope, names, shown, options.resources, timer.run)
    report.judge = timer.run("judge", lambda: fetch_judge(scope, names, options.confidence))
    report.costs = timer.run("costs", lambda: fetch_costs(scope, counts, options.live_prices))
    if options.sides and report.examples:
        report.sides = timer.run("sides", lambda: fetch_sides(scope.warehouse, report.examples))
    # challengers first, the control (the reference) after them
    report.slices.sort(key=lambda s: (s.experiment_id, s.challenger in controls, s.challenger))
    report.examples.sort(
        key=lambda e: (
            e.experiment_id,
            e.challenger in controls,
            e.challenger,
            -(e.request_time or EPOCH).timestamp(),
        )
    )
    if options.charts:
        first = min((c.first_minute for c in shown if c.first_minute), default=None)
        last = max((c.last_minute for c in shown if c.last_minute), default=None)
        total = sum(c.comparisons for c in shown)
        fine = total <= FINE_MAX_COMPARISONS and _span(first, last) <= FINE_MAX_SPAN_S
        report.bucket_seconds = pick_bucket(
            first, last, options.max_buckets, FINE_BUCKETS if fine else BUCKETS
        )
        query = "timeseries_fine" if fine else "timeseries"
        report.series = timer.run(
            "series", lambda: fetch_series(scope, options, names, report.bucket_seconds, query)
        )
        report.latency = timer.run("latency", lambda: fetch_latency_curves(scope, names))
    return report


# -- per challenger ------------------------------------------------------------------------
def _side(c: Counts, prefix: str, confidence: float) -> Side:
    n = c.comparisons
    q = getattr(c, f"{prefix}_latency_q")
    return Side(
        ok=getattr(c, f"{prefix}_ok"),
        errors=Rate.of(getattr(c, f"{prefix}_errors"), n, confidence),
        timeouts=Rate.of(getattr(c, f"{prefix}_timeouts"), n, confidence),
        missing=Rate.of(getattr(c, f"{prefix}_missing"), n, confidence),
        invalid_format=Rate.of(
            getattr(c, f"{prefix}_format_invalid"),
            getattr(c, f"{prefix}_format_checked"),
            confidence,
        ),
        latency_p50_ms=q[0] if len(q) > 0 else None,
        latency_p95_ms=q[1] if len(q) > 1 else None,
        latency_p99_ms=q[2] if len(q) > 2 else None,
        tokens_in=ratio(getattr(c, f"{prefix}_tokens_in_sum"), getattr(c, f"{prefix}_tokens_in_n")),
        tokens_out=ratio(
            getattr(c, f"{prefix}_tokens_out_sum"), getattr(c, f"{prefix}_tokens_out_n")
        ),
        tool_calls=ratio(
            getattr(c, f"{prefix}_tool_calls_sum"), getattr(c, f"{prefix}_tool_calls_n")
        ),
        cost=ratio(getattr(c, f"{prefix}_cost_sum"), getattr(c, f"{prefix}_cost_n")),
    )


def _delta(champion: float | None, challenger: float | None) -> tuple[float | None, float | None]:
    if champion is None or challenger is None:
        return None, None
    pct = (challenger / champion - 1) * 100 if champion > 0 else None
    return challenger - champion, pct


def noise_floor(
    c: Counts, control: Counts | None, name: str, confidence: float
) -> NoiseFloor | None:
    """How the challenger's divergence compares with the control's (A/A) divergence.

    Newcombe's interval for the difference of two independent proportions. The
    control and the challenger see mostly the same requests; where requests that
    make the champion disagree with itself also make the challenger disagree, the
    two rates are positively correlated and treating them as independent makes
    the interval wider (conservative), never narrower.
    """
    if control is None or c.challenger == name or control.compared == 0:
        return None
    control_rate = Rate.of(control.diverged, control.compared, confidence)
    if c.compared == 0:
        return NoiseFloor(name, control_rate, None, None, None, None, False)
    ci = newcombe_diff(c.diverged, c.compared, control.diverged, control.compared, confidence)
    p_value = two_proportion_test(c.diverged, c.compared, control.diverged, control.compared)
    diff = c.diverged / c.compared - control.diverged / control.compared
    return NoiseFloor(name, control_rate, diff, ci.low, ci.high, p_value, ci.low > 0 or ci.high < 0)


def challenger_report(
    c: Counts, control: Counts | None, options: ReportOptions, control_name: str | None = None
) -> ChallengerReport:
    """One challenger's row; ``control`` is its paired control's counts (named
    ``control_name``, default ``options.control``)."""
    name = options.control if control_name is None else control_name
    confidence = options.confidence
    champion = _side(c, "champion", confidence)
    challenger = _side(c, "challenger", confidence)
    d50, p50 = _delta(champion.latency_p50_ms, challenger.latency_p50_ms)
    d95, p95 = _delta(champion.latency_p95_ms, challenger.latency_p95_ms)
    d99, p99 = _delta(champion.latency_p99_ms, challenger.latency_p99_ms)
    control_p95 = None
    if control is not None and len(control.challenger_latency_q) > 1:
        control_p95 = control.challenger_latency_q[1]
    increase, increase_ci = None, None
    if c.paired > 0:
        increase = (c.paired_challenger_only_failed - c.paired_champion_only_failed) / c.paired
        increase_ci = newcombe_paired_diff(
            c.paired_both_failed,
            c.paired_challenger_only_failed,
            c.paired_champion_only_failed,
            c.paired,
            confidence,
        )
    return ChallengerReport(
        experiment_id=c.experiment_id,
        challenger=c.challenger,
        is_control=c.challenger in options.control_names,
        comparisons=c.comparisons,
        late=c.late,
        both_answered=c.both_answered,
        divergence=Rate.of(c.diverged, c.compared, confidence),
        mean_divergence_score=ratio(c.divergence_score_sum, c.compared),
        floor=noise_floor(c, control, name, confidence) if name else None,
        champion=champion,
        challenger_side=challenger,
        latency_delta=LatencyDelta(d50, d95, d99, p50, p95, p99),
        failure_increase=increase,
        failure_increase_ci=increase_ci,
        first_minute=c.first_minute,
        last_minute=c.last_minute,
        control=name if control is not None else "",
        control_p95_ms=control_p95,
        p95_vs_control_pct=_delta(control_p95, challenger.latency_p95_ms)[1],
    )


# -- slices, examples, charts ------------------------------------------------------------
def fetch_slices(
    scope: Scope,
    options: ReportOptions,
    names: list[str],
    totals: dict[tuple[str, str], Counts],
) -> list[SliceRow]:
    """Top slices per challenger, each tested against the rest of its traffic.

    One-sided two-proportion z-test (slice rate > rate on the challenger's other
    requests), Bonferroni-corrected over every slice tested for that challenger
    (all attribute values with at least ``min_slice_compared`` compared responses),
    so scanning many attributes does not manufacture "significant" slices.
    """
    result = scope.run(
        "slices",
        z=two_sided_z(options.confidence),
        min_compared=options.min_slice_compared,
        per_challenger=options.slices_per_challenger,
        challengers=names,
    )
    alpha = 1 - options.confidence
    rows = []
    for r in result.dicts():
        total = totals.get((str(r["experiment_id"]), str(r["challenger"])))
        if total is None:
            continue
        k, n = int(r["diverged"]), int(r["compared"])
        rest_k, rest_n = total.diverged - k, total.compared - n
        rest_rate = rest_k / rest_n if rest_n > 0 else None
        tested = int(r["tested"])
        p_value = bonferroni(two_proportion_test(k, n, rest_k, rest_n, "greater"), tested)
        rate = k / n if n else None
        lift = rate / rest_rate if rate is not None and rest_rate else None
        rows.append(
            SliceRow(
                experiment_id=str(r["experiment_id"]),
                challenger=str(r["challenger"]),
                attribute=str(r["attribute"]),
                value=str(r["value"]),
                comparisons=int(r["comparisons"]),
                divergence=Rate.of(k, n, options.confidence),
                rest_rate=rest_rate,
                lift=lift,
                p_value=p_value,
                tested=tested,
                significant=p_value is not None and p_value < alpha,
                failure_rate=ratio(int(r["challenger_failed"]), int(r["comparisons"])),
                invalid_format_rate=ratio(int(r["format_invalid"]), int(r["format_checked"])),
            )
        )
    return rows


def fetch_examples(scope: Scope, options: ReportOptions, names: list[str]) -> list[Example]:
    result = scope.run(
        "examples", per_challenger=options.examples_per_challenger, challengers=names
    )
    examples = [
        Example(
            experiment_id=str(r["experiment_id"]),
            challenger=str(r["challenger"]),
            request_time=as_utc(r["request_time"]),
            request_id=str(r["request_id"]),
            kind=str(r["kind"]),
            endpoint=str(r["endpoint"]),
            challenger_status=str(r["challenger_status"]),
            divergence_score=finite(r["divergence_score"]),
            diff_summary=str(r["diff_summary"]),
            diff_paths=[str(p) for p in r["diff_paths"] or []],
            challenger_error=r["challenger_error"],
            attributes={str(k): str(v) for k, v in (r["attributes"] or {}).items()},
        )
        for r in result.dicts()
    ]
    if not examples:
        return examples
    traces = {
        (str(r[0]), str(r[1]), str(r[2])): str(r[3])
        for r in scope.run(
            "example_traces", request_ids=sorted({e.request_id for e in examples})
        ).rows
    }
    return [
        dataclasses.replace(
            e,
            trace_id=traces[key],
            trace_url=options.trace_url.replace("{trace_id}", traces[key])
            if options.trace_url
            else "",
        )
        if (key := (e.experiment_id, e.challenger, e.request_id)) in traces
        else e
        for e in examples
    ]


def _span(first: dt.datetime | None, last: dt.datetime | None) -> float:
    """Seconds covered by the minutes first..last (inclusive)."""
    if first is None or last is None:
        return 60.0
    return (last - first).total_seconds() + 60


def pick_bucket(
    first: dt.datetime | None,
    last: dt.datetime | None,
    max_buckets: int,
    widths: list[int] = BUCKETS,
) -> int:
    """The smallest round bucket width giving at most ``max_buckets`` points."""
    span = _span(first, last)
    for width in widths:
        if span / width <= max_buckets:
            return width
    return widths[-1]


def fetch_series(
    scope: Scope,
    options: ReportOptions,
    names: list[str],
    bucket_seconds: int,
    query: str = "timeseries",
) -> list[SeriesPoint]:
    """Divergence per time bucket: from the rollup, or (short ranges, small data)
    from ``comparisons FINAL`` so that buckets can be shorter than a minute."""
    result = scope.run(query, bucket_seconds=bucket_seconds, challengers=names)
    points = []
    for r in result.dicts():
        comparisons = int(r["comparisons"])
        points.append(
            SeriesPoint(
                experiment_id=str(r["experiment_id"]),
                challenger=str(r["challenger"]),
                bucket=as_utc(r["bucket"]) or EPOCH,
                comparisons=comparisons,
                divergence=Rate.of(
                    int(r["diverged_count"]), int(r["compared"]), options.confidence
                ),
                failure_rate=ratio(comparisons - int(r["challenger_ok"]), comparisons),
                invalid_format_rate=ratio(
                    int(r["challenger_format_invalid"]), int(r["challenger_format_checked"])
                ),
            )
        )
    return points


def fetch_latency_curves(scope: Scope, names: list[str]) -> list[LatencyCurve]:
    result = scope.run("latency_grid", challengers=names)
    return [
        LatencyCurve(
            experiment_id=str(r["experiment_id"]),
            challenger=str(r["challenger"]),
            levels=list(LATENCY_LEVELS),
            champion_ms=[finite(v) for v in r["champion_q"]],
            challenger_ms=[finite(v) for v in r["challenger_q"]],
        )
        for r in result.dicts()
    ]


# -- the minimal summary (kept for the demo) ---------------------------------------------------
def summary(
    warehouse: Warehouse, window: TimeRange | None = None, experiment: str = ""
) -> list[dict[str, Any]]:
    """One row per (challenger, experiment): counts, divergence, latency, errors."""
    window = window or TimeRange()
    params = {**window.parameters(), "experiment": experiment}
    return warehouse.query(load_sql("summary", warehouse.database), params).dicts()


def experiments(counts: Iterable[Counts]) -> list[str]:
    return sorted({c.experiment_id for c in counts})
