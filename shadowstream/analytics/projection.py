"""The projected bill: what a challenger would use and cost per day if promoted.

Rate. The live request rate a challenger would serve is measured over the
report's range: its live comparisons over the span of their request times,
divided by the share of its eligible requests it was actually sent:

* **router stats** (``agent_stats``): the router counts every request the
  challenger could have been sent (its endpoints) and every one it was sent;
  the fraction is exact, whatever cut the traffic (sample rate, budget,
  max_rps). Batch requests are counted as sent too and are taken out.
* **configured sample_rate** when no stats are stored; the rate then has a
  sampling error, ``sqrt((1 - f) / n)`` relative.
* **assumed 1** when neither is known (said so in the output).

Per request. Each metric's mean per response that reported it, champion and
challenger on the same requests, with the standard error from the sample
(sum of squares in the rollup); the difference is paired (the same requests'
challenger minus champion value).

Projection. per day = rate x 86,400 x mean, with a normal interval that
combines the mean's and the rate's relative errors; per month = per day x
``days_per_month``. For batch experiments the live rate of the same range is
used and the cost is also given at the batch price (``batch_price_factor`` x
the recorded cost: batch APIs typically charge half).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shadowstream.analytics.distribution import Moments
from shadowstream.analytics.queries import Scope, as_utc
from shadowstream.analytics.resource_model import METRICS, Amount, MetricProjection, Projection
from shadowstream.analytics.resources import Key, ResourceOptions, SideData, read_sides
from shadowstream.analytics.stats import two_sided_z

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Rate:
    """Live requests per second a challenger would serve, and how it was corrected."""

    per_second: float | None
    relative_error: float  # standard error / value (0 when counted, not sampled)
    fraction: float | None
    source: str


@dataclass(frozen=True)
class Sampling:
    sampled: int
    eligible: int


def fetch_sampling(scope: Scope) -> dict[str, Sampling]:
    rows = scope.run("router_sampling").dicts()
    return {str(r["challenger"]): Sampling(int(r["sampled"]), int(r["eligible"])) for r in rows}


def fetch_batch_comparisons(scope: Scope) -> dict[str, int]:
    return {
        str(r["challenger"]): int(r["comparisons"])
        for r in scope.run("batch_comparisons", experiment="").dicts()
    }


def span_seconds(first: Any, last: Any) -> float:
    a, b = as_utc(first), as_utc(last)
    if a is None or b is None:
        return 0.0
    return max((b - a).total_seconds(), 0.0)


def sample_fraction(
    name: str,
    sampling: Mapping[str, Sampling],
    batch: Mapping[str, int],
    configured: Mapping[str, float],
) -> tuple[float | None, str]:
    stats = sampling.get(name)
    if stats is not None:
        sent = stats.sampled - batch.get(name, 0)
        eligible = stats.eligible - batch.get(name, 0)
        if eligible > 0 and sent > 0:
            return min(sent / eligible, 1.0), "router stats"
    if name in configured:
        return configured[name], "sample_rate"
    return 1.0, "assumed"


def live_rate(
    name: str,
    comparisons: int,
    span_s: float,
    sampling: Mapping[str, Sampling],
    batch: Mapping[str, int],
    configured: Mapping[str, float],
) -> Rate:
    """Requests per second from ``comparisons`` live comparisons over ``span_s`` seconds."""
    fraction, source = sample_fraction(name, sampling, batch, configured)
    if comparisons < 2 or span_s <= 0 or not fraction:
        return Rate(None, 0.0, fraction, source)
    per_second = (comparisons - 1) / span_s / fraction
    error = 0.0 if source == "router stats" else math.sqrt((1 - fraction) / comparisons)
    return Rate(per_second, error, fraction, source)


def amount(moments: Moments | None, rate: Rate, confidence: float, factor: float = 1.0) -> Amount:
    if moments is None or moments.mean is None:
        return Amount(None, None, None, None)
    mean = moments.mean * factor
    if rate.per_second is None:
        return Amount(mean, None, None, None)
    per_day = rate.per_second * SECONDS_PER_DAY * mean
    se = moments.std_error
    if se is None:
        return Amount(mean, per_day, None, None)
    # var(R*m) ~ (R*se_m)^2 + (m*se_R)^2, both relative to the day's total
    spread = math.hypot(rate.per_second * se * factor, mean * rate.per_second * rate.relative_error)
    half = two_sided_z(confidence) * spread * SECONDS_PER_DAY
    return Amount(mean, per_day, per_day - half, per_day + half)


def difference(a: Moments | None, b: Moments | None, paired: Moments | None) -> Moments | None:
    """challenger - champion: the paired differences when stored, else the two means'
    difference with the independent-samples error (conservative for positively correlated
    sides)."""
    if paired is not None and paired.n >= 2:
        return paired
    if a is None or b is None or a.mean is None or b.mean is None:
        return None
    se_a, se_b = a.std_error or 0.0, b.std_error or 0.0
    n = min(a.n, b.n)
    se = math.hypot(se_a, se_b)
    mean = b.mean - a.mean
    # Moments whose std_error is `se` and whose mean is `mean`
    total_sq = (se * se * n * (n - 1)) + n * mean * mean if n >= 2 else 0.0
    return Moments(n, mean * n, total_sq)


def project_one(
    experiment: str,
    challenger: str,
    sides: Mapping[Key, SideData],
    rate: Rate,
    options: ResourceOptions,
    confidence: float,
    comparisons: int = 0,
) -> Projection:
    metrics = []
    batch = experiment != "live"
    for metric in METRICS:
        a = sides.get((experiment, challenger, metric, "champion"))
        b = sides.get((experiment, challenger, metric, "challenger"))
        if a is None and b is None:
            continue
        paired = sides.get((experiment, challenger, f"{metric}_delta", "challenger"))
        delta = difference(
            a.moments if a else None, b.moments if b else None, paired.moments if paired else None
        )
        factors = [(metric, 1.0)]
        if batch and metric == "cost":
            factors.append(("cost at batch price", options.batch_price_factor))
        for label, factor in factors:
            metrics.append(
                MetricProjection(
                    label,
                    amount(a.moments if a else None, rate, confidence, factor),
                    amount(b.moments if b else None, rate, confidence, factor),
                    amount(delta, rate, confidence, factor),
                    b.moments.n / comparisons if b and comparisons else None,
                )
            )
    note = "" if rate.per_second is not None else "no live traffic of this challenger in range"
    return Projection(
        experiment_id=experiment,
        challenger=challenger,
        requests_per_day=rate.per_second * SECONDS_PER_DAY if rate.per_second else None,
        rate_source=rate.source,
        sample_fraction=rate.fraction,
        days_per_month=options.days_per_month,
        metrics=metrics,
        batch_price_factor=options.batch_price_factor if batch else None,
        note=note,
    )


def fetch_projections(
    scope: Scope,
    names: list[str],
    sides: Mapping[Key, SideData],
    comparisons: Mapping[tuple[str, str], int],
    options: ResourceOptions,
    confidence: float,
) -> list[Projection]:
    """One projection per (experiment, challenger) with resource data in the scope.

    ``comparisons``: per (experiment, challenger) in the scope. The rate's
    numerator is the live comparisons, its span the live request times (from
    the resource rollup); both are read for the live experiment when the
    report looks at a batch one.
    """
    if not sides:
        return []
    sampling = fetch_sampling(scope)
    batch = fetch_batch_comparisons(scope)
    if scope.experiment in ("", "live"):
        live = sides
        live_counts = {c: n for (e, c), n in comparisons.items() if e == "live"}
    else:
        live = _live_sides(scope, names)
        rows = scope.run("challengers", experiment="live").dicts()
        live_counts = {str(r["challenger"]): int(r["comparisons"]) for r in rows}
    spans: dict[str, float] = {}
    for (experiment, challenger, _, _), data in live.items():
        if experiment == "live":
            span = span_seconds(data.first_request, data.last_request)
            spans[challenger] = max(spans.get(challenger, 0.0), span)
    out = []
    for experiment, challenger in sorted({key[:2] for key in sides}):
        rate = live_rate(
            challenger,
            live_counts.get(challenger, 0),
            spans.get(challenger, 0.0),
            sampling,
            batch,
            options.sample_rates,
        )
        n = comparisons.get((experiment, challenger), 0)
        out.append(project_one(experiment, challenger, sides, rate, options, confidence, n))
    return out


def _live_sides(scope: Scope, names: list[str]) -> dict[Key, SideData]:
    return read_sides(scope.run("resources", challengers=names, experiment="live").dicts())


def months(amount_per_day: float | None, days_per_month: float) -> float | None:
    return None if amount_per_day is None else amount_per_day * days_per_month
