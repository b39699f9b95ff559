"""Confidence sequences: valid at every look, unlike a fixed-sample interval checked often."""

from __future__ import annotations

import math
import random

import pytest

from shadowstream.analytics.sequential import (
    difference_cs,
    paired_difference_cs,
    quantile_rank_cs,
    rate_cs,
)
from shadowstream.analytics.stats import (
    newcombe_paired_diff,
    one_sided_z,
    quantile_ci_levels,
    wilson_z,
)


def test_a_rate_sequence_contains_the_estimate_and_narrows() -> None:
    widths = []
    for n in (100, 1_000, 10_000, 100_000):
        k = n // 50
        cs = rate_cs(k, n, 0.05)
        assert 0 <= cs.low < k / n < cs.high <= 1
        fixed = wilson_z(k, n, one_sided_z(0.95))
        assert cs.low < fixed.low and cs.high > fixed.high  # the price of peeking
        widths.append(cs.high - cs.low)
    assert widths == sorted(widths, reverse=True)
    assert rate_cs(0, 500, 0.05).low == 0.0 and rate_cs(500, 500, 0.05).high == 1.0
    assert rate_cs(0, 0, 0.05) == rate_cs(0, 0, 0.5)


def test_peeking_at_every_check_stays_within_alpha() -> None:
    """200 sequences of Bernoulli(0.05), looked at every 40 observations up to 4,000:
    the sequence misses the truth at some look in at most alpha of them; the Wilson
    interval, looked at as often, misses far more often than its nominal alpha."""
    rng = random.Random(1234)
    p, alpha, runs = 0.05, 0.1, 200
    z = one_sided_z(1 - alpha / 2)
    ever_sequence = ever_fixed = 0
    for _ in range(runs):
        k = 0
        missed_sequence = missed_fixed = False
        for n in range(1, 4001):
            k += rng.random() < p
            if n % 40:
                continue
            if not missed_sequence:
                cs = rate_cs(k, n, alpha)
                missed_sequence = not cs.low <= p <= cs.high
            if not missed_fixed:
                fixed = wilson_z(k, n, z)
                missed_fixed = not fixed.low <= p <= fixed.high
        ever_sequence += missed_sequence
        ever_fixed += missed_fixed
    assert ever_sequence / runs <= alpha
    assert ever_fixed / runs > 2 * alpha


def test_a_difference_of_rates_holds_under_any_dependence() -> None:
    both = difference_cs(300, 10_000, 200, 10_000, 0.05)
    first, second = rate_cs(300, 10_000, 0.025), rate_cs(200, 10_000, 0.025)
    assert both.low == pytest.approx(first.low - second.high)
    assert both.high == pytest.approx(first.high - second.low)
    assert both.low < 0.01 < both.high
    assert difference_cs(1, 0, 1, 10, 0.05).low == -1.0


def test_a_paired_difference_counts_only_discordant_pairs() -> None:
    same = paired_difference_cs(both=200, only_first=0, only_second=0, n=10_000, alpha=0.05)
    assert same.low < 0 < same.high and same.high < 0.002  # no discordance: tight around 0
    worse = paired_difference_cs(0, 300, 100, 10_000, 0.05)
    assert 0 < worse.low < 0.02 < worse.high
    mirrored = paired_difference_cs(0, 100, 300, 10_000, 0.05)
    assert mirrored.low == pytest.approx(-worse.high, abs=1e-6)
    fixed = newcombe_paired_diff(0, 300, 100, 10_000, 0.9)
    assert worse.low < fixed.low and worse.high > fixed.high
    with pytest.raises(ValueError):
        paired_difference_cs(0, 80, 30, 100, 0.05)


def test_paired_sequences_stay_valid_when_looked_at_often() -> None:
    rng = random.Random(99)
    alpha, runs, misses = 0.1, 60, 0
    for _ in range(runs):
        plus = minus = 0
        for n in range(1, 3001):
            roll = rng.random()
            plus += roll < 0.02
            minus += 0.02 <= roll < 0.04
            if n % 100 == 0:
                cs = paired_difference_cs(0, plus, minus, n, alpha)
                if not cs.low <= 0 <= cs.high:
                    misses += 1
                    break
    assert misses / runs <= alpha


def test_quantile_ranks_bracket_the_quantile_at_every_sample_size() -> None:
    for n in (300, 3_000, 30_000, 300_000):
        low, high = quantile_rank_cs(0.95, n, 0.05)
        fixed_low, fixed_high = quantile_ci_levels(0.95, n, 0.975)
        assert low < fixed_low < 0.95 < fixed_high < high <= 1
    assert quantile_rank_cs(0.95, 20, 0.01)[1] == math.inf  # too few for an upper bound


def test_quantile_ranks_are_valid_under_continuous_monitoring() -> None:
    """The rank of the true p95 among n uniform draws, checked every 25 draws."""
    rng = random.Random(7)
    alpha, runs, misses = 0.1, 150, 0
    for _ in range(runs):
        below = 0
        for n in range(1, 2501):
            below += rng.random() <= 0.95
            if n % 25:
                continue
            low, high = quantile_rank_cs(0.95, n, alpha)
            # the bounds X_(low*n) <= Q <= X_(high*n) hold iff these ranks bracket `below`
            if not (math.ceil(low * n) <= below < high * n):
                misses += 1
                break
    assert misses / runs <= alpha


def test_alpha_is_checked() -> None:
    with pytest.raises(ValueError):
        rate_cs(1, 10, 0)
    with pytest.raises(ValueError):
        quantile_rank_cs(1.0, 10, 0.05)
