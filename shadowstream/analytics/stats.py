"""Small, dependency-free statistics for proportions and quantiles.

Everything here works on counts (what ClickHouse returns), never on raw rows.

* :func:`wilson` - score interval for one proportion (good coverage even for
  rates near 0 or 1 and small n, unlike the Wald interval).
* :func:`newcombe_diff` - interval for p1 - p2 of two independent samples
  (Newcombe 1998, "hybrid score", method 10 of the independent-samples paper).
* :func:`newcombe_paired_diff` - interval for p1 - p2 when both proportions are
  measured on the same units (Newcombe 1998, paired data, method 10).
* :func:`two_proportion_test` - pooled z-test, one- or two-sided p-value.
* :func:`quantile_ci_levels` - distribution-free confidence bounds of a
  quantile as the levels of two order statistics (binomial method).

``confidence`` is always the coverage of the interval as returned: two-sided
functions return a two-sided interval; :func:`one_sided_z` gives the z of a
one-sided bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def two_sided_z(confidence: float) -> float:
    """z such that a symmetric interval covers ``confidence`` (0.95 -> 1.96)."""
    _check_confidence(confidence)
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def one_sided_z(confidence: float) -> float:
    """z of a one-sided bound holding with probability ``confidence`` (0.95 -> 1.645)."""
    _check_confidence(confidence)
    return _NORMAL.inv_cdf(confidence)


def two_sided_confidence_for_one_sided(confidence: float) -> float:
    """A two-sided interval at this level has one-sided bounds at ``confidence``."""
    _check_confidence(confidence)
    return 2 * confidence - 1


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def rate(k: int, n: int) -> float | None:
    return k / n if n > 0 else None


def wilson_z(k: int, n: int, z: float) -> Interval:
    """Wilson score interval for k successes out of n, for a given z."""
    if n <= 0:
        return Interval(0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # at k = 0 (or n) the exact bound is 0 (or 1); avoid rounding noise
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(low, high)


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Two-sided Wilson score interval."""
    return wilson_z(k, n, two_sided_z(confidence))


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Interval:
    """Interval for p1 - p2 (independent samples), Newcombe's hybrid score method.

    Built from the two Wilson intervals; keeps its coverage near the nominal
    level for small counts and rates near 0, where the Wald interval fails.
    """
    if n1 <= 0 or n2 <= 0:
        return Interval(-1.0, 1.0)
    z = two_sided_z(confidence)
    p1, p2 = k1 / n1, k2 / n2
    w1, w2 = wilson_z(k1, n1, z), wilson_z(k2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def newcombe_paired_diff(
    both: int, only_first: int, only_second: int, n: int, confidence: float = 0.95
) -> Interval:
    """Interval for p1 - p2 where both rates are measured on the same n units.

    ``both`` units have the event on both sides, ``only_first`` only on side 1,
    ``only_second`` only on side 2 (so p1 = (both + only_first) / n). Newcombe
    1998 (paired, method 10): the Wilson limits of each margin, combined with
    the phi correlation of the 2x2 table. With no discordant pairs it still
    gives a non-degenerate interval (unlike the paired Wald interval).
    """
    if n <= 0:
        return Interval(-1.0, 1.0)
    neither = n - both - only_first - only_second
    if neither < 0:
        raise ValueError("cell counts exceed n")
    z = two_sided_z(confidence)
    k1, k2 = both + only_first, both + only_second
    p1, p2 = k1 / n, k2 / n
    w1, w2 = wilson_z(k1, n, z), wilson_z(k2, n, z)
    margins = (
        (both + only_first)
        * (only_second + neither)
        * (both + only_second)
        * (only_first + neither)
    )
    phi = (both * neither - only_first * only_second) / math.sqrt(margins) if margins else 0.0
    d = p1 - p2
    dl1, du2 = p1 - w1.low, w2.high - p2
    du1, dl2 = w1.high - p1, p2 - w2.low
    delta = math.sqrt(max(0.0, dl1**2 - 2 * phi * dl1 * du2 + du2**2))
    epsilon = math.sqrt(max(0.0, du1**2 - 2 * phi * du1 * dl2 + dl2**2))
    return Interval(max(-1.0, d - delta), min(1.0, d + epsilon))


def two_proportion_test(
    k1: int, n1: int, k2: int, n2: int, alternative: str = "two-sided"
) -> float | None:
    """p-value of the pooled two-proportion z-test of p1 = p2.

    ``alternative``: ``two-sided``, ``greater`` (p1 > p2) or ``less``.
    None when either sample is empty or both rates are 0 or 1 (no variance).
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return None if k1 / n1 == k2 / n2 else 0.0
    z = (k1 / n1 - k2 / n2) / math.sqrt(var)
    if alternative == "greater":
        return 1 - _NORMAL.cdf(z)
    if alternative == "less":
        return _NORMAL.cdf(z)
    if alternative != "two-sided":
        raise ValueError(f"unknown alternative {alternative!r}")
    return 2 * (1 - _NORMAL.cdf(abs(z)))


def bonferroni(p_value: float | None, tests: int) -> float | None:
    if p_value is None:
        return None
    return min(1.0, p_value * max(tests, 1))


def quantile_ci_levels(q: float, n: int, confidence: float) -> tuple[float, float]:
    """Levels of the order statistics bounding the q-quantile (one-sided each).

    With n samples, X_(r) <= true q-quantile with probability P(Bin(n, q) >= r);
    choosing r about n*q - z*sqrt(n*q*(1-q)) (rounded outwards) makes the
    lower bound hold with probability ``confidence``, and symmetrically for
    the upper bound. Distribution-free; the normal approximation of the
    binomial is accurate once n*q*(1-q) is above ~10 (n >= 200 at q = 0.95).
    Returns (lower_level, upper_level) in [0, 1]; read the sample's quantile
    function at these levels to get the bounds.
    """
    if n <= 0:
        return 0.0, 1.0
    z = one_sided_z(confidence)
    spread = z * math.sqrt(n * q * (1 - q))
    low_rank = math.floor(n * q - spread)
    high_rank = math.ceil(n * q + spread) + 1
    return max(0.0, low_rank / n), min(1.0, high_rank / n)
