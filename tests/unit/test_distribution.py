"""Binned distributions (resources, measures), the projected bill's arithmetic, and the
resource gate criteria on known samples."""

from __future__ import annotations

import math
import random

import pytest

from shadowstream.analytics.distribution import (
    ZERO_KEY,
    Histogram,
    Moments,
    linear_key,
    log_key,
)
from shadowstream.analytics.gate_resources import over_limit_criterion, p95_criterion
from shadowstream.analytics.model import Counts
from shadowstream.analytics.projection import Rate, Sampling, amount, difference, live_rate
from shadowstream.analytics.resources import SideData
from shadowstream.core.config import OverLimitSpec


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_log_bins_hold_their_values() -> None:
    rng = random.Random(3)
    for value in [rng.lognormvariate(0, 4) for _ in range(2000)] + [1.0, 2.0, 50.0, 1e-6]:
        low, high = Histogram((), "log").bounds(log_key(value))
        assert low < value <= high * (1 + 1e-12)
    assert log_key(0) == ZERO_KEY and log_key(-3) == ZERO_KEY


def test_integers_below_fifty_come_out_exactly() -> None:
    values = [float(v) for v in range(0, 51)] * 3
    hist = Histogram.from_values(values, "log", integer=True)
    for q in (0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert hist.quantile(q) == exact_quantile(values, q)
    # and any integer limit splits them exactly
    for limit in (0, 1, 7, 49, 50):
        assert hist.count_over(limit) == sum(1 for v in values if v > limit)


@pytest.mark.parametrize("seed", range(5))
def test_continuous_quantiles_within_one_percent_and_shares_close(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(5, 1.2) for _ in range(5000)]
    hist = Histogram.from_values(values, "log")
    assert hist.n == 5000
    for q in (0.5, 0.95, 0.99):
        truth = exact_quantile(values, q)
        assert hist.quantile(q) == pytest.approx(truth, rel=0.0101)
    for limit in (50.0, 150.0, 600.0, 2000.0):
        truth = sum(1 for v in values if v > limit)
        # only the bin straddling the limit is estimated
        straddle = sum(1 for v in values if log_key(v) == log_key(limit))
        assert abs(hist.count_over(limit) - truth) <= straddle


def test_linear_bins_and_integer_tokens_above_fifty() -> None:
    assert linear_key(0.8285) == 829 and linear_key(0.5) == 500 and linear_key(7.0) == 7000
    hist = Histogram.from_values([0.1, 0.25, 0.9, 1.0], "linear")
    assert hist.quantile(0.5) == 0.25 and hist.quantile(1.0) == 1.0
    assert hist.count_over(0.5) == 2
    tokens = Histogram.from_values([812.0] * 10, "log", integer=True)
    assert tokens.quantile(0.5) == pytest.approx(812, rel=0.01)
    assert float(tokens.quantile(0.5) or 0).is_integer()


def test_counts_by_display_bins_and_merge() -> None:
    calls = Histogram.from_values([0, 0, 1, 2, 2, 3, 7, 12, 60], "log", integer=True)
    assert calls.counts_by([0, 1, 2, 3, 4, 11, 51]) == [2, 1, 2, 1, 1, 1, 1]
    assert calls.merged(calls).n == 18


def test_moments_interval() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    m = Moments(4, sum(values), sum(v * v for v in values))
    assert m.mean == 2.5
    assert m.std == pytest.approx(math.sqrt(5 / 3))
    ci = m.interval(0.95)
    assert ci is not None and ci.low == pytest.approx(2.5 - 1.959964 * math.sqrt(5 / 3) / 2)
    assert Moments(1, 3.0, 9.0).interval(0.95) is None


# -- the projection -------------------------------------------------------------------------------
def test_rate_corrected_by_router_stats_config_or_assumed() -> None:
    # 101 comparisons over 100 s, the challenger sent 25% of what it could have been
    stats = {"c": Sampling(sampled=260, eligible=1_000)}
    measured = live_rate("c", 101, 100.0, stats, {"c": 10}, {"c": 0.5})
    assert measured.source == "router stats"
    assert measured.fraction == pytest.approx(250 / 990)
    assert measured.per_second == pytest.approx(1.0 / (250 / 990))
    assert measured.relative_error == 0.0  # counted, not sampled
    configured = live_rate("c", 101, 100.0, {}, {}, {"c": 0.25})
    assert configured.per_second == pytest.approx(4.0)
    assert configured.relative_error == pytest.approx(math.sqrt(0.75 / 101))
    assumed = live_rate("c", 101, 100.0, {}, {}, {})
    assert assumed.source == "assumed" and assumed.per_second == pytest.approx(1.0)
    assert live_rate("c", 1, 100.0, {}, {}, {}).per_second is None


def test_amount_per_day_with_interval() -> None:
    values = [0.01, 0.02, 0.03, 0.02]
    m = Moments(4, sum(values), sum(v * v for v in values))
    rate = Rate(per_second=2.0, relative_error=0.0, fraction=1.0, source="router stats")
    a = amount(m, rate, 0.95)
    assert a.per_day == pytest.approx(2.0 * 86_400 * 0.02)
    se = math.sqrt((sum(v * v for v in values) - 4 * 0.02**2) / 3) / 2
    assert a.high is not None and a.low is not None
    assert a.high - a.per_day == pytest.approx(1.959964 * se * 2.0 * 86_400, rel=1e-5)
    batch = amount(m, rate, 0.95, factor=0.5)
    assert batch.per_day == pytest.approx(a.per_day / 2)
    # a sampled rate widens the interval
    noisy = amount(m, Rate(2.0, 0.1, 0.5, "sample_rate"), 0.95)
    assert noisy.high is not None and noisy.high > a.high


def test_difference_paired_or_independent() -> None:
    paired = Moments(3, 0.3, 0.05)
    assert difference(None, None, paired) is paired
    a = Moments(4, 4.0, 4.0 + 0.04 * 3)  # mean 1, small spread
    b = Moments(4, 8.0, 16.0 + 0.04 * 3)
    d = difference(a, b, None)
    assert d is not None and d.mean == pytest.approx(1.0)
    assert d.std_error == pytest.approx(math.hypot(a.std_error or 0, b.std_error or 0))


# -- resource gate criteria ------------------------------------------------------------------------
def side(values: list[float], integer: bool = True) -> SideData:
    return SideData(
        Moments(len(values), sum(values), sum(v * v for v in values)),
        Histogram.from_values(values, "log", integer),
    )


COUNTS = Counts(experiment_id="live", challenger="c", comparisons=2000)


def sides(
    champion: list[float], challenger: list[float]
) -> dict[tuple[str, str, str, str], SideData]:
    return {
        ("live", "c", "tokens_out", "champion"): side(champion),
        ("live", "c", "tokens_out", "challenger"): side(challenger),
    }


def test_p95_increase_passes_fails_or_waits() -> None:
    rng = random.Random(1)
    base = [float(rng.randint(100, 200)) for _ in range(2000)]
    same = p95_criterion(sides(base, list(base)), COUNTS, "tokens_out", 20, 0.95)
    assert same.status == "pass" and same.estimate == 0
    bigger = p95_criterion(sides(base, [v * 1.5 for v in base]), COUNTS, "tokens_out", 20, 0.95)
    assert bigger.status == "fail" and bigger.estimate == pytest.approx(50, abs=2)
    # 40 values with a long tail: the p95's bounds are far apart, so +15% cannot be told
    # from +20% yet
    tail = [float(10 + i * i) for i in range(40)]
    few = p95_criterion(
        sides(tail, [float(round(v * 1.15)) for v in tail]), COUNTS, "tokens_out", 20, 0.95
    )
    assert few.status == "undecided"
    assert few.pessimistic is not None and few.optimistic is not None
    assert few.optimistic <= 20 < few.pessimistic
    nothing = p95_criterion({}, COUNTS, "tokens_out", 20, 0.95)
    assert nothing.status == "skipped"


def test_share_over_limit_criterion() -> None:
    values = [100.0] * 940 + [900.0] * 60  # 6% over 800
    data = sides(values, values)
    rule = OverLimitSpec(limit=800, max_share=0.10)
    assert over_limit_criterion(data, COUNTS, "tokens_out", rule, 0.95).status == "pass"
    strict = OverLimitSpec(limit=800, max_share=0.02)
    failed = over_limit_criterion(data, COUNTS, "tokens_out", strict, 0.95)
    assert failed.status == "fail" and failed.estimate == pytest.approx(0.06)
    assert "60/1,000" in failed.note
