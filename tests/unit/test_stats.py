"""The interval and test functions against published values and by simulation."""

from __future__ import annotations

import math
import random

import pytest

from shadowstream.analytics.stats import (
    bonferroni,
    newcombe_diff,
    newcombe_paired_diff,
    one_sided_z,
    quantile_ci_levels,
    two_proportion_test,
    two_sided_confidence_for_one_sided,
    two_sided_z,
    wilson,
)


def test_z_values() -> None:
    assert two_sided_z(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert one_sided_z(0.95) == pytest.approx(1.644854, abs=1e-6)
    assert two_sided_confidence_for_one_sided(0.95) == pytest.approx(0.90)
    with pytest.raises(ValueError):
        two_sided_z(1.0)


def test_wilson_known_values() -> None:
    # 0 of 10: the exact upper bound of the Wilson interval is 0.2775
    ci = wilson(0, 10)
    assert ci.low == 0.0 and ci.high == pytest.approx(0.2775, abs=1e-4)
    # Newcombe (1998) example: 81/263 -> 0.2553 to 0.3662
    ci = wilson(81, 263)
    assert (ci.low, ci.high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    assert wilson(10, 10).high == 1.0
    assert (wilson(0, 0).low, wilson(0, 0).high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_newcombe_difference_matches_the_paper() -> None:
    # Newcombe (1998), independent proportions, 56/70 - 48/80: method 10 gives 0.0524 to 0.3339
    ci = newcombe_diff(56, 70, 48, 80)
    assert ci.low == pytest.approx(0.0524, abs=1e-4)
    assert ci.high == pytest.approx(0.3339, abs=1e-4)
    # symmetric: swapping the samples negates the interval
    swapped = newcombe_diff(48, 80, 56, 70)
    assert (swapped.low, swapped.high) == (pytest.approx(-ci.high), pytest.approx(-ci.low))


def test_paired_difference_properties() -> None:
    ci = newcombe_paired_diff(both=5, only_first=30, only_second=10, n=500)
    assert ci.low < (30 - 10) / 500 < ci.high
    assert ci.low > 0  # 30 vs 10 discordant pairs out of 500 is a real difference
    mirrored = newcombe_paired_diff(both=5, only_first=10, only_second=30, n=500)
    assert (mirrored.low, mirrored.high) == (pytest.approx(-ci.high), pytest.approx(-ci.low))
    # no failures anywhere: still an honest, non-degenerate interval around 0
    none = newcombe_paired_diff(0, 0, 0, 200)
    assert none.low < 0 < none.high and none.high == pytest.approx(wilson(0, 200).high)
    # pairing helps: the same margins, positively correlated, give a narrower interval
    independent = newcombe_diff(35, 500, 15, 500)
    assert ci.high - ci.low < independent.high - independent.low


def _coverage(sample: object, truth: float, sims: int) -> float:
    hits = 0
    for _ in range(sims):
        low, high = sample()  # type: ignore[operator]
        hits += low <= truth <= high
    return hits / sims


def test_paired_interval_covers_the_true_difference() -> None:
    rng = random.Random(3)
    n, p_both, p_first, p_second = 300, 0.02, 0.04, 0.015

    def sample() -> tuple[float, float]:
        both = first = second = 0
        for _ in range(n):
            roll = rng.random()
            if roll < p_both:
                both += 1
            elif roll < p_both + p_first:
                first += 1
            elif roll < p_both + p_first + p_second:
                second += 1
        ci = newcombe_paired_diff(both, first, second, n)
        return ci.low, ci.high

    assert _coverage(sample, p_first - p_second, 400) >= 0.92


def test_two_proportion_test() -> None:
    # 60/100 vs 40/100: z = 2.828, two-sided p = 0.00468
    assert two_proportion_test(60, 100, 40, 100) == pytest.approx(0.00468, abs=1e-4)
    assert two_proportion_test(60, 100, 40, 100, "greater") == pytest.approx(0.00234, abs=1e-4)
    assert two_proportion_test(60, 100, 40, 100, "less") == pytest.approx(1 - 0.00234, abs=1e-4)
    assert two_proportion_test(5, 100, 5, 100) == pytest.approx(1.0)
    assert two_proportion_test(0, 100, 0, 100) is None
    assert two_proportion_test(1, 0, 1, 10) is None
    assert bonferroni(0.01, 20) == pytest.approx(0.2)
    assert bonferroni(0.2, 20) == 1.0 and bonferroni(None, 3) is None


def test_quantile_bounds_levels() -> None:
    low, high = quantile_ci_levels(0.95, 1000, 0.975)
    assert (low, high) == (0.936, 0.965)
    assert quantile_ci_levels(0.95, 0, 0.95) == (0.0, 1.0)
    assert quantile_ci_levels(0.95, 10, 0.99)[1] == 1.0  # tiny samples: the maximum


def test_quantile_bounds_cover_the_true_p95() -> None:
    """Order statistics at those levels bound the true p95 as often as promised."""
    rng = random.Random(5)
    n, q, conf = 400, 0.95, 0.95
    truth = -math.log(1 - q)  # p95 of Exp(1)
    low_level, high_level = quantile_ci_levels(q, n, conf)
    low_hits = high_hits = 0
    sims = 600
    for _ in range(sims):
        xs = sorted(rng.expovariate(1.0) for _ in range(n))
        low_hits += xs[max(round(low_level * n) - 1, 0)] <= truth
        high_hits += xs[min(round(high_level * n) - 1, n - 1)] >= truth
    assert low_hits / sims >= conf - 0.03
    assert high_hits / sims >= conf - 0.03
