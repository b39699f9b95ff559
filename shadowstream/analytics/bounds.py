"""How a criterion's bounds are computed: once (the gate) or under continuous monitoring (watch).

Every criterion asks a :class:`BoundMethod` for intervals; ``alpha`` is the
error allowed for each one-sided bound of the interval returned.

* :class:`FixedSample` - the classical intervals (Wilson, Newcombe, the
  binomial order-statistic method): right for *one* look at the data, as
  ``shadow gate`` in a CI job takes.
* :class:`AnytimeValid` - confidence sequences (:mod:`shadowstream.analytics.sequential`):
  valid at every look, for ``shadow watch``, which re-evaluates every minute
  for days. Wider at any single look; the price of peeking for free.
"""

from __future__ import annotations

from typing import Protocol

from shadowstream.analytics.sequential import (
    difference_cs,
    paired_difference_cs,
    quantile_rank_cs,
    rate_cs,
)
from shadowstream.analytics.stats import (
    Interval,
    newcombe_diff,
    newcombe_paired_diff,
    one_sided_z,
    quantile_ci_levels,
    wilson_z,
)


class BoundMethod(Protocol):
    """Intervals whose lower and upper bounds each hold with probability >= 1 - alpha."""

    name: str

    def rate(self, k: int, n: int, alpha: float) -> Interval: ...

    def difference(self, k1: int, n1: int, k2: int, n2: int, alpha: float) -> Interval: ...

    def paired_difference(
        self, both: int, only_first: int, only_second: int, n: int, alpha: float
    ) -> Interval: ...

    def quantile_levels(self, q: float, n: int, alpha: float) -> tuple[float, float]: ...


class FixedSample:
    """One look: Wilson, Newcombe (independent and paired), order statistics."""

    name = "fixed-sample"

    def rate(self, k: int, n: int, alpha: float) -> Interval:
        return wilson_z(k, n, one_sided_z(1 - alpha))

    def difference(self, k1: int, n1: int, k2: int, n2: int, alpha: float) -> Interval:
        return newcombe_diff(k1, n1, k2, n2, 1 - 2 * alpha)

    def paired_difference(
        self, both: int, only_first: int, only_second: int, n: int, alpha: float
    ) -> Interval:
        return newcombe_paired_diff(both, only_first, only_second, n, 1 - 2 * alpha)

    def quantile_levels(self, q: float, n: int, alpha: float) -> tuple[float, float]:
        return quantile_ci_levels(q, n, 1 - alpha)


class AnytimeValid:
    """Every look: confidence sequences (mixture martingales, Ville's inequality)."""

    name = "anytime-valid"

    def rate(self, k: int, n: int, alpha: float) -> Interval:
        return rate_cs(k, n, alpha)

    def difference(self, k1: int, n1: int, k2: int, n2: int, alpha: float) -> Interval:
        return difference_cs(k1, n1, k2, n2, alpha)

    def paired_difference(
        self, both: int, only_first: int, only_second: int, n: int, alpha: float
    ) -> Interval:
        return paired_difference_cs(both, only_first, only_second, n, alpha)

    def quantile_levels(self, q: float, n: int, alpha: float) -> tuple[float, float]:
        return quantile_rank_cs(q, n, alpha)


FIXED_SAMPLE = FixedSample()
ANYTIME_VALID = AnytimeValid()
