"""Anytime-valid confidence sequences for rates, differences of rates and quantiles.

A confidence sequence (CS) holds at every sample size at once: with
probability at least 1 - alpha the true value is inside the interval at *every*
check, however often one looks and whenever one stops. A fixed-sample interval
checked every minute does not: over a week of checks it misses the truth far
more often than alpha (see benchmarks/watch_false_alarms.py).

All three constructions are mixture martingales (Robbins 1970; Howard, Ramdas,
McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", Ann. Statist. 49(2)): for a candidate value p, the ratio

    M_n(p) = (marginal likelihood of the data under a prior over alternatives)
             / (likelihood of the data under p)

is a non-negative martingale with mean 1 when p is true, so by Ville's
inequality P(exists n: M_n(p) >= 1/alpha) <= alpha. The CS is every p with
M_n(p) < 1/alpha. Everything works on counts, as the rollups return them.

* :func:`rate_cs` - one Bernoulli rate, beta-binomial mixture (Jeffreys prior).
* :func:`paired_difference_cs` - p(+) - p(-) of a paired +1/0/-1 outcome
  (challenger failed / neither or both / champion failed), Dirichlet mixture
  over the trinomial, projected onto the difference by profile likelihood.
* :func:`difference_cs` - p1 - p2 of two rates, from the two rate CSs at
  alpha/2 each (a union bound: valid however the two streams depend on each
  other, e.g. a challenger and the control answering the same requests).
* :func:`quantile_rank_cs` - the ranks bounding a quantile: for the true
  q-quantile Q, #{X_i <= Q} is a Binomial(n, q) walk; a beta-binomial mixture
  centred on q bounds it uniformly in n (Howard & Ramdas 2022, "Sequential
  estimation of quantiles with applications to A/B-testing and best-arm
  identification", Bernoulli 28(3)). Reading the sample's quantile function at
  those ranks gives a time-uniform, distribution-free CS for the quantile.

Each function returns a two-sided set with joint coverage 1 - alpha, so each
of its two bounds also holds with probability >= 1 - alpha on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from shadowstream.analytics.stats import Interval

JEFFREYS = 0.5
# the quantile mixture's prior concentration (pseudo-observations): tightest
# for sample sizes around a few hundred times this, loose only far below it
QUANTILE_PRIOR_WEIGHT = 50.0
_ITERATIONS = 40


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _xlogy(x: float, y: float) -> float:
    """x * log(y) with 0 * log(0) = 0."""
    if x == 0:
        return 0.0
    if y <= 0:
        return -math.inf
    return x * math.log(y)


def _check(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _bisect(f: Callable[[float], bool], inside: float, outside: float) -> float:
    """The boundary between ``inside`` (f true) and ``outside`` (f false)."""
    for _ in range(_ITERATIONS):
        middle = (inside + outside) / 2
        if f(middle):
            inside = middle
        else:
            outside = middle
    return inside


# -- one rate -----------------------------------------------------------------------------------
def rate_log_mixture(k: int, n: int, a: float = JEFFREYS, b: float = JEFFREYS) -> float:
    """log of the beta-binomial marginal likelihood of k successes in n (one sequence)."""
    return _lbeta(a + k, b + n - k) - _lbeta(a, b)


def rate_cs(k: int, n: int, alpha: float) -> Interval:
    """Time-uniform CS for a Bernoulli rate after k successes in n trials."""
    _check(alpha)
    if n <= 0:
        return Interval(0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    cutoff = rate_log_mixture(k, n) + math.log(alpha)

    def inside(p: float) -> bool:
        return _xlogy(k, p) + _xlogy(n - k, 1 - p) > cutoff

    centre = k / n
    low = 0.0 if inside(0.0) else _bisect(inside, centre, 0.0)
    high = 1.0 if inside(1.0) else _bisect(inside, centre, 1.0)
    return Interval(low, high)


def difference_cs(k1: int, n1: int, k2: int, n2: int, alpha: float) -> Interval:
    """CS for p1 - p2 from a CS of each rate at alpha / 2 (valid under any dependence)."""
    _check(alpha)
    if n1 <= 0 or n2 <= 0:
        return Interval(-1.0, 1.0)
    first, second = rate_cs(k1, n1, alpha / 2), rate_cs(k2, n2, alpha / 2)
    return Interval(first.low - second.high, first.high - second.low)


# -- a paired difference ------------------------------------------------------------------------
def _paired_profile(plus: int, minus: int, zero: int, theta: float) -> float:
    """max log-likelihood of the trinomial subject to p(+) - p(-) = theta.

    With m = p(-), the log-likelihood plus*log(m + theta) + minus*log(m) +
    zero*log(1 - 2m - theta) is concave in m; its stationary point solves the
    quadratic -2n m^2 + (plus*c + minus*(c - 2 theta) - 2 zero theta) m +
    minus*theta*c = 0 with c = 1 - theta (multiply the derivative out).
    """
    lo, hi = max(0.0, -theta), (1 - theta) / 2
    if hi < lo:
        return -math.inf

    def loglik(pm: float) -> float:
        return _xlogy(plus, pm + theta) + _xlogy(minus, pm) + _xlogy(zero, 1 - 2 * pm - theta)

    n = plus + minus + zero
    c = 1 - theta
    a = -2.0 * n
    b = plus * c + minus * (c - 2 * theta) - 2 * zero * theta
    constant = minus * theta * c
    candidates = [lo, hi]
    if a != 0:
        disc = b * b - 4 * a * constant
        if disc >= 0:
            root = math.sqrt(disc)
            candidates += [min(hi, max(lo, (-b + sign * root) / (2 * a))) for sign in (-1, 1)]
    return max(loglik(pm) for pm in candidates)


def paired_difference_cs(
    both: int, only_first: int, only_second: int, n: int, alpha: float
) -> Interval:
    """Time-uniform CS for p1 - p2 measured on the same n units.

    Only the discordant units move the difference: +1 when only side 1 has the
    event, -1 when only side 2 has it, 0 otherwise. Dirichlet(1/2, 1/2, 1/2)
    mixture over the three outcome probabilities; the CS of the difference is
    the set of values whose profile likelihood stays within the mixture's
    Ville bound.
    """
    _check(alpha)
    if n <= 0:
        return Interval(-1.0, 1.0)
    plus, minus = only_first, only_second
    zero = n - plus - minus
    if zero < 0 or both < 0 or both > zero:
        raise ValueError("cell counts exceed n")
    a = JEFFREYS
    log_mixture = (
        math.lgamma(3 * a)
        - 3 * math.lgamma(a)
        + math.lgamma(a + plus)
        + math.lgamma(a + minus)
        + math.lgamma(a + zero)
        - math.lgamma(3 * a + n)
    )
    cutoff = log_mixture + math.log(alpha)

    def inside(theta: float) -> bool:
        return _paired_profile(plus, minus, zero, theta) > cutoff

    centre = (plus - minus) / n
    low = -1.0 if inside(-1.0) else _bisect(inside, centre, -1.0)
    high = 1.0 if inside(1.0) else _bisect(inside, centre, 1.0)
    return Interval(low, high)


# -- quantiles ----------------------------------------------------------------------------------
def quantile_rank_cs(q: float, n: int, alpha: float) -> tuple[float, float]:
    """Levels (rank / n) of the order statistics bounding the q-quantile, uniformly in n.

    With probability >= 1 - alpha, for every n: X_(lo) <= Q <= X_(hi), where
    lo and hi are ``level * n``. A level above 1 means "no upper bound yet"
    (too few samples); read the sample's quantile function at the levels.
    """
    _check(alpha)
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    if n <= 0:
        return 0.0, math.inf
    a, b = QUANTILE_PRIOR_WEIGHT * q, QUANTILE_PRIOR_WEIGHT * (1 - q)
    bound = math.log(1 / alpha)
    log_q, log_not_q = math.log(q), math.log(1 - q)

    def inside(k: float) -> bool:  # M_n(q) < 1/alpha when k of n samples are <= Q
        mixture = _lbeta(a + k, b + n - k) - _lbeta(a, b)
        return mixture - (k * log_q + (n - k) * log_not_q) < bound

    centre = n * q
    low = 0.0 if inside(0.0) else _bisect(inside, centre, 0.0)
    high = float(n) if inside(float(n)) else _bisect(inside, centre, float(n))
    low_rank = math.ceil(low - 1e-9)
    high_rank = math.floor(high + 1e-9) + 1
    upper = high_rank / n if high_rank <= n else math.inf
    return max(0.0, low_rank / n), upper
