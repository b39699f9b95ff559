"""The report's sections beyond one row per challenger: the slices that diverge most,
examples, divergence over time and latency distributions."""

from __future__ import annotations

import dataclasses
import datetime as dt

from shadowstream.analytics.model import (
    Counts,
    Example,
    LatencyCurve,
    Rate,
    SeriesPoint,
    SliceRow,
    finite,
    ratio,
)
from shadowstream.analytics.queries import EPOCH, Scope, as_utc
from shadowstream.analytics.report_options import BUCKETS, LATENCY_LEVELS, ReportOptions
from shadowstream.analytics.stats import bonferroni, two_proportion_test, two_sided_z


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


def span_seconds(first: dt.datetime | None, last: dt.datetime | None) -> float:
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
    span = span_seconds(first, last)
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
