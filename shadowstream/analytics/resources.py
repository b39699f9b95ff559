"""Resources per request as distributions: tokens in/out, tool calls, cost.

Averages on an eval set hide the tail that sets the bill and the rate limits;
here each (experiment, challenger, metric) gets, for the champion and the
challenger on the same requests: p50 / p95 / p99, the mean with its interval,
and the share of responses above a limit the user sets (``--limit
tokens_out=800`` or ``[resources.limits]``), overall and per attribute slice.
The numbers come from log-binned histograms in the rollups
(sinks/clickhouse/sql/0041_resources.sql; decoded by analytics.distribution):
quantiles within 1% of their value, integers below ~50 exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadowstream.analytics.distribution import Histogram, Moments
from shadowstream.analytics.measures import spread_of
from shadowstream.analytics.queries import Scope
from shadowstream.analytics.resource_model import (
    INTEGER_METRICS,
    METRICS,
    OverLimit,
    ResourceRow,
    ResourceSlice,
    SideUsage,
)
from shadowstream.analytics.stats import wilson

Key = tuple[str, str, str, str]  # experiment, challenger, metric, side


@dataclass(frozen=True)
class ResourceOptions:
    """What the resources section and the projection need beyond the scope."""

    limits: Mapping[str, float] = field(default_factory=dict)
    sample_rates: Mapping[str, float] = field(default_factory=dict)  # configured, by challenger
    batch_price_factor: float = 0.5
    days_per_month: float = 30.0
    min_slice_n: int = 30
    slices_per_metric: int = 5


@dataclass(frozen=True)
class SideData:
    """One (experiment, challenger, metric, side) as read from the rollup."""

    moments: Moments
    histogram: Histogram
    first_request: Any = None
    last_request: Any = None


def read_sides(rows: list[dict[str, Any]]) -> dict[Key, SideData]:
    out: dict[Key, SideData] = {}
    for r in rows:
        metric = str(r["metric"])
        key = (str(r["experiment_id"]), str(r["challenger"]), metric, str(r["side"]))
        out[key] = SideData(
            Moments(int(r["n"]), float(r["total"]), float(r.get("total_sq") or 0.0)),
            Histogram.of(r.get("hist") or {}, "log", metric in INTEGER_METRICS),
            r.get("first_request"),
            r.get("last_request"),
        )
    return out


def fetch_resource_sides(scope: Scope, names: list[str]) -> dict[Key, SideData]:
    return read_sides(scope.run("resources", challengers=names).dicts())


def side_usage(data: SideData | None, limit: float | None, confidence: float) -> SideUsage | None:
    if data is None or data.moments.n == 0:
        return None
    over = None
    if limit is not None:
        n = data.histogram.n
        count = data.histogram.count_over(limit)
        ci = wilson(round(count), n, confidence) if n else None
        over = OverLimit(
            limit=limit,
            count=count,
            n=n,
            share=count / n if n else None,
            low=ci.low if ci else None,
            high=ci.high if ci else None,
        )
    return SideUsage(spread_of(data.moments, data.histogram, confidence), over)


def p95_change(champion: SideUsage | None, challenger: SideUsage | None) -> float | None:
    if champion is None or challenger is None:
        return None
    a, b = champion.spread.p95, challenger.spread.p95
    if a is None or b is None or a <= 0:
        return None
    return (b / a - 1) * 100


def resource_rows(
    sides: Mapping[Key, SideData], options: ResourceOptions, confidence: float
) -> list[ResourceRow]:
    pairs = sorted({key[:2] for key in sides})
    rows = []
    for experiment, challenger in pairs:
        for metric in METRICS:
            limit = options.limits.get(metric)
            a = side_usage(
                sides.get((experiment, challenger, metric, "champion")), limit, confidence
            )
            b = side_usage(
                sides.get((experiment, challenger, metric, "challenger")), limit, confidence
            )
            if a is None and b is None:
                continue
            rows.append(ResourceRow(experiment, challenger, metric, a, b, p95_change(a, b)))
    return rows


def fetch_resource_slices(
    scope: Scope,
    names: list[str],
    options: ResourceOptions,
    confidence: float,
    sides: Mapping[Key, SideData] | None = None,
) -> list[ResourceSlice]:
    """Per metric, the slices where the challenger's p95 rose most against the champion's
    (slices holding every response of the challenger, e.g. its only endpoint, left out)."""
    grouped: dict[tuple[str, str, str, str, str], dict[str, SideData]] = {}
    for r in scope.run("resource_slices", challengers=names, min_n=options.min_slice_n).dicts():
        metric = str(r["metric"])
        key = (str(r["experiment_id"]), str(r["challenger"]), metric)
        slice_key = (*key, str(r["attribute"]), str(r["value"]))
        grouped.setdefault(slice_key, {})[str(r["side"])] = SideData(
            Moments(int(r["n"]), float(r["total"]), 0.0),
            Histogram.of(r.get("hist") or {}, "log", metric in INTEGER_METRICS),
        )
    candidates: dict[tuple[str, str, str], list[ResourceSlice]] = {}
    for (experiment, challenger, metric, attribute, value), by_side in grouped.items():
        limit = options.limits.get(metric)
        a = side_usage(by_side.get("champion"), limit, confidence)
        b = side_usage(by_side.get("challenger"), limit, confidence)
        whole = (sides or {}).get((experiment, challenger, metric, "challenger"))
        if b is None or (whole is not None and b.spread.n >= whole.moments.n):
            continue
        candidates.setdefault((experiment, challenger, metric), []).append(
            ResourceSlice(experiment, challenger, attribute, value, metric, a, b, p95_change(a, b))
        )
    out = []
    for key in sorted(candidates):
        ranked = sorted(
            candidates[key],
            key=lambda s: (-(s.p95_change_pct or 0.0), -(s.challenger_side.spread.p95 or 0.0)
                           if s.challenger_side else 0.0, s.attribute, s.value),
        )  # fmt: skip
        out.extend(ranked[: options.slices_per_metric])
    return out
