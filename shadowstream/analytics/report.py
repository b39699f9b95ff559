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
from typing import Any

from shadowstream.analytics.challenger_stats import challenger_report, noise_floor
from shadowstream.analytics.llm import fetch_costs, fetch_judge
from shadowstream.analytics.model import (
    Counts,
    Report,
)
from shadowstream.analytics.pairing import endpoint_mix, pair_controls
from shadowstream.analytics.queries import (
    EPOCH,
    FAR_FUTURE,
    Scope,
    TimeRange,
    load_sql,
    require_schema,
)
from shadowstream.analytics.report_extras import fill_extras
from shadowstream.analytics.report_options import (
    BUCKETS,
    FINE_BUCKETS,
    FINE_MAX_COMPARISONS,
    FINE_MAX_SPAN_S,
    LATENCY_LEVELS,
    ReportOptions,
)
from shadowstream.analytics.report_sections import (
    fetch_examples,
    fetch_latency_curves,
    fetch_series,
    fetch_slices,
    pick_bucket,
    span_seconds,
)
from shadowstream.analytics.sidebyside import fetch_sides
from shadowstream.warehouse.client import Warehouse

__all__ = [
    "BUCKETS",
    "EPOCH",
    "FAR_FUTURE",
    "LATENCY_LEVELS",
    "ReportOptions",
    "TimeRange",
    "build_report",
    "challenger_report",
    "fetch_counts",
    "fetch_examples",
    "fetch_latency_curves",
    "fetch_series",
    "fetch_slices",
    "noise_floor",
    "pick_bucket",
    "summary",
]

Progress = Callable[[str], None]


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
        fine = total <= FINE_MAX_COMPARISONS and span_seconds(first, last) <= FINE_MAX_SPAN_S
        report.bucket_seconds = pick_bucket(
            first, last, options.max_buckets, FINE_BUCKETS if fine else BUCKETS
        )
        query = "timeseries_fine" if fine else "timeseries"
        report.series = timer.run(
            "series", lambda: fetch_series(scope, options, names, report.bucket_seconds, query)
        )
        report.latency = timer.run("latency", lambda: fetch_latency_curves(scope, names))
    return report


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
