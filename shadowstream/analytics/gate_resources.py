"""Gate criteria on resource use (``[gate.resources]``; every one off unless set).

Judged like every other criterion (analytics.gate): a one-sided bound on
each side of the estimate at the gate's confidence; pass when the pessimistic
bound meets the threshold, FAIL when even the optimistic one misses it.

* **p95 increase** of a metric (``max_p95_increase_pct = {tokens_out = 20}``):
  challenger p95 / champion p95 - 1, on the same requests. Bounds are the
  distribution-free order statistics of each p95 (as for latency), each side
  at 1 - alpha/2 so the ratio's bound holds with >= 1 - alpha: pessimistic =
  challenger's upper / champion's lower - 1.
* **share over a limit** (``over_limit = {tokens_out = {limit = 800,
  max_share = 0.05}}``): the challenger's responses above the limit, Wilson
  bounds.
* **projected monthly cost** (``max_monthly_cost = 5000``): the challenger's
  cost per month if promoted at the live request rate of the range
  (analytics.projection); normal bounds from the sample.
"""

from __future__ import annotations

import math

from shadowstream.analytics.criteria.base import Criterion
from shadowstream.analytics.criteria.base import decide as _judge
from shadowstream.analytics.model import Counts
from shadowstream.analytics.projection import fetch_projections
from shadowstream.analytics.queries import Scope
from shadowstream.analytics.resources import (
    Key,
    ResourceOptions,
    SideData,
    fetch_resource_sides,
    side_usage,
)
from shadowstream.analytics.stats import one_sided_z, two_sided_confidence_for_one_sided, wilson_z
from shadowstream.core.decision_config import GateSpec, OverLimitSpec

Q = 0.95


def resource_criteria(
    scope: Scope, c: Counts, spec: GateSpec, options: ResourceOptions | None = None
) -> list[Criterion]:
    """The configured resource criteria for one (experiment, challenger); [] when none are."""
    gate = spec.resources
    if not gate.enabled or c.comparisons == 0:
        return []
    sides = {k: v for k, v in fetch_resource_sides(scope, [c.challenger]).items()
             if k[0] == c.experiment_id}  # fmt: skip
    out = [
        p95_criterion(sides, c, metric, limit, spec.confidence)
        for metric, limit in sorted(gate.max_p95_increase_pct.items())
    ]
    out += [
        over_limit_criterion(sides, c, metric, rule, spec.confidence)
        for metric, rule in sorted(gate.over_limit.items())
    ]
    if gate.max_monthly_cost is not None:
        out.append(
            monthly_cost_criterion(scope, sides, c, gate.max_monthly_cost, spec.confidence, options)
        )
    return out


def _side(sides: dict[Key, SideData], c: Counts, metric: str, side: str) -> SideData | None:
    data = sides.get((c.experiment_id, c.challenger, metric, side))
    return data if data is not None and data.histogram.n > 0 else None


def p95_criterion(
    sides: dict[Key, SideData], c: Counts, metric: str, limit: float, confidence: float
) -> Criterion:
    name = f"{metric} p95 increase"
    threshold = f"<= +{limit:g}%"
    a, b = _side(sides, c, metric, "champion"), _side(sides, c, metric, "challenger")
    if a is None and b is None:
        return Criterion.unmeasured(name, threshold, "skipped", f"no {metric} reported", "pct")
    if a is None or b is None:
        missing = "champion" if a is None else "challenger"
        return Criterion.unmeasured(
            name, threshold, "undecided", f"no {metric} from the {missing} yet", "pct"
        )
    per_side = 1 - (1 - confidence) / 2
    base, chall = a.histogram.quantile(Q), b.histogram.quantile(Q)
    base_bounds = a.histogram.quantile_bounds(Q, per_side)
    chall_bounds = b.histogram.quantile_bounds(Q, per_side)
    assert base is not None and chall is not None and base_bounds and chall_bounds
    estimate = _increase(chall, base)
    pessimistic = _increase(chall_bounds[1], base_bounds[0])
    optimistic = _increase(chall_bounds[0], base_bounds[1])
    return Criterion(
        name,
        threshold,
        estimate,
        pessimistic,
        optimistic,
        _judge(pessimistic <= limit, optimistic <= limit),
        unit="pct",
        note=f"p95 {_num(chall)} vs champion {_num(base)}",
    )


def _increase(challenger: float, baseline: float) -> float:
    """challenger / baseline - 1 in %; from a baseline of 0, any rise is unbounded."""
    if baseline > 0:
        return (challenger / baseline - 1) * 100
    return 0.0 if challenger <= 0 else math.inf


def over_limit_criterion(
    sides: dict[Key, SideData], c: Counts, metric: str, rule: OverLimitSpec, confidence: float
) -> Criterion:
    name = f"{metric} over {rule.limit:g}"
    threshold = f"<= {rule.max_share:.2%}"
    data = _side(sides, c, metric, "challenger")
    usage = side_usage(data, rule.limit, confidence)
    if usage is None or usage.over_limit is None:
        return Criterion.unmeasured(name, threshold, "undecided", f"no {metric} reported yet")
    over = usage.over_limit
    k = round(over.count)
    bounds = wilson_z(k, over.n, one_sided_z(confidence))
    return Criterion(
        name,
        threshold,
        over.share,
        bounds.high,
        bounds.low,
        _judge(bounds.high <= rule.max_share, bounds.low <= rule.max_share),
        note=f"{k:,}/{over.n:,} responses above {rule.limit:g}",
    )


def monthly_cost_criterion(
    scope: Scope,
    sides: dict[Key, SideData],
    c: Counts,
    limit: float,
    confidence: float,
    options: ResourceOptions | None,
) -> Criterion:
    name = "projected monthly cost"
    threshold = f"<= {limit:,.2f}"
    options = options or ResourceOptions()
    if _side(sides, c, "cost", "challenger") is None:
        return Criterion.unmeasured(name, threshold, "undecided", "no cost reported yet", "amount")
    projections = fetch_projections(
        scope,
        [c.challenger],
        sides,
        {(c.experiment_id, c.challenger): c.comparisons},
        options,
        two_sided_confidence_for_one_sided(confidence),
    )
    rows = [m for p in projections for m in p.metrics if m.metric == "cost"]
    projection = projections[0] if projections else None
    amount = rows[0].challenger if rows else None
    if projection is None or amount is None or amount.per_day is None:
        note = projection.note if projection is not None else "no projection"
        return Criterion.unmeasured(name, threshold, "undecided", note, "amount")
    month = projection.days_per_month
    estimate = amount.per_day * month
    high = (amount.high if amount.high is not None else amount.per_day) * month
    low = (amount.low if amount.low is not None else amount.per_day) * month
    return Criterion(
        name,
        threshold,
        estimate,
        high,
        max(low, 0.0),
        _judge(high <= limit, low <= limit),
        unit="amount",
        note=f"{(projection.requests_per_day or 0):,.0f} requests/day ({projection.rate_source}), "
        f"{rows[0].challenger.per_request or 0:.6f} per request",
    )


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.4g}"
