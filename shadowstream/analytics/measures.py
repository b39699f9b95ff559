"""Comparator measures in the report: each measure's distribution, overall and per slice.

The ranked-list comparator stores rbo / jaccard / overlap / shared / ndcg with
every comparison (``measures``); the rollups keep them binned per minute
(sinks/clickhouse/sql/0040_measures.sql). Per (experiment, challenger,
measure): mean with a 95% interval, p10 / p50 / p90 and the histogram; per
attribute slice the same, tested against the challenger's other requests
(one-sided Welch z-test on the means, Bonferroni over the slices tested):
"rbo is lower for collection=legal" is flagged only when it holds up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from shadowstream.analytics.distribution import Histogram, Moments
from shadowstream.analytics.queries import Scope
from shadowstream.analytics.resource_model import MeasureRow, MeasureSlice, Spread
from shadowstream.analytics.stats import bonferroni


def spread_of(moments: Moments, histogram: Histogram, confidence: float) -> Spread:
    interval = moments.interval(confidence)
    return Spread(
        n=moments.n,
        mean=moments.mean,
        mean_low=interval.low if interval else None,
        mean_high=interval.high if interval else None,
        p10=histogram.quantile(0.10),
        p50=histogram.quantile(0.50),
        p90=histogram.quantile(0.90),
        p95=histogram.quantile(0.95),
        p99=histogram.quantile(0.99),
        histogram=histogram,
        moments=moments,
    )


def _moments(row: Mapping[str, Any]) -> Moments:
    return Moments(int(row["n"]), float(row["total"]), float(row.get("total_sq") or 0.0))


def _linear(row: Mapping[str, Any]) -> Histogram:
    return Histogram.of(row.get("hist") or {}, "linear")


def fetch_measures(scope: Scope, names: list[str], confidence: float) -> list[MeasureRow]:
    return [
        MeasureRow(
            experiment_id=str(r["experiment_id"]),
            challenger=str(r["challenger"]),
            measure=str(r["measure"]),
            spread=spread_of(_moments(r), _linear(r), confidence),
        )
        for r in scope.run("measures", challengers=names).dicts()
        if int(r["n"]) > 0
    ]


def welch_lower_p(slice_: Moments, rest: Moments) -> float | None:
    """One-sided p-value that the slice's mean is below the rest's (normal approximation)."""
    if slice_.n < 2 or rest.n < 2:
        return None
    a, b = slice_.std_error, rest.std_error
    assert a is not None and b is not None and slice_.mean is not None and rest.mean is not None
    se = math.sqrt(a * a + b * b)
    diff = slice_.mean - rest.mean
    if se == 0:
        return 0.0 if diff < 0 else 1.0
    return 0.5 * math.erfc(-diff / se / math.sqrt(2)) if diff else 0.5


def fetch_measure_slices(
    scope: Scope,
    names: list[str],
    totals: Mapping[tuple[str, str, str], MeasureRow],
    confidence: float,
    min_n: int,
    per_measure: int,
) -> list[MeasureSlice]:
    """The slices with the lowest mean per measure, each tested against the rest."""
    rows = scope.run("measure_slices", challengers=names, min_n=min_n).dicts()
    alpha = 1 - confidence
    shown: dict[tuple[str, str, str], int] = {}
    out = []
    for r in rows:
        key = (str(r["experiment_id"]), str(r["challenger"]), str(r["measure"]))
        total = totals.get(key)
        if total is None or shown.get(key, 0) >= per_measure or int(r["n"]) >= total.spread.n:
            continue  # (a slice holding every request, e.g. the only endpoint, tells nothing)
        shown[key] = shown.get(key, 0) + 1
        moments = _moments(r)
        rest = _rest(total.spread, moments)
        tested = int(r["tested"])
        p_value = bonferroni(welch_lower_p(moments, rest), tested) if rest else None
        out.append(
            MeasureSlice(
                experiment_id=key[0],
                challenger=key[1],
                measure=key[2],
                attribute=str(r["attribute"]),
                value=str(r["value"]),
                spread=spread_of(moments, _linear(r), confidence),
                rest_mean=rest.mean if rest else None,
                difference=(moments.mean - rest.mean)
                if rest and rest.mean is not None and moments.mean is not None
                else None,
                p_value=p_value,
                tested=tested,
                significant=p_value is not None and p_value < alpha,
            )
        )
    return out


def _rest(whole: Spread, part: Moments) -> Moments | None:
    """The challenger's other requests: the whole minus the slice."""
    n = whole.moments.n - part.n
    if n < 2:
        return None
    return Moments(n, whole.moments.total - part.total, whole.moments.total_sq - part.total_sq)
