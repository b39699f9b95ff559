"""Continuous monitoring, simulated: false alarms of A/A watches, and time to detect regressions.

    ./dev bench watch_false_alarms.py                 # 1,000 A/A watches, 7 days, checked every minute
    ./dev bench watch_false_alarms.py --watches 200 --days 2 --rate 5

Each simulated watch is a challenger and its baselines (the A/A control for
divergence and latency, the champion for failures and output format) answering
``--rate`` requests per second, checked every simulated minute for ``--days``.
Every check asks, per criterion of the gate, "is the challenger confidently
worse than its baseline?" (the regression alarm of ``shadow watch``), plus the
gate's one absolute threshold (invalid format <= 1%):

* divergence above the control's (overall),
* error-rate increase over the champion (paired on the same requests),
* latency p95 above the control's,
* invalid-format rate above the champion's, and above 1%,
* divergence above the control's in each language slice (4 slices).

Side by side, on the same simulated data:

* ``anytime-valid``: what ``shadow watch`` uses - confidence sequences
  (shadowstream.analytics.sequential), alpha = 5% split over the 5 criteria,
  slices at alpha / 100 each;
* ``fixed-sample gate``: ``shadow gate``'s intervals (Wilson, Newcombe, the
  binomial order-statistic method) at its default 95% per criterion, run every
  minute as a cron job would;
* ``fixed-sample, split``: the same fixed intervals with the watch's alpha
  split, to show the false alarms come from peeking, not from the split.

A/A: every watch's challenger is its control's twin; the fraction that *ever*
alarmed in the whole run is the false-alarm rate (the watch's target: <= 5%).
Then planted regressions (2x error rate, +30% p95, +5 points of divergence on
one slice), from the start and from day 2, and the time until the first alarm.

Data are drawn per minute per watch (numpy, vectorized over watches): counts of
divergences, failures and invalid outputs, and the latencies as a histogram in
probability space (fine bins around p95), read like the t-digest rollups.
The vectorized checks are checked against the library's own functions first.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from shadowstream.analytics.sequential import (
    JEFFREYS,
    paired_difference_cs,
    quantile_rank_cs,
    rate_cs,
)
from shadowstream.analytics.stats import (
    newcombe_diff,
    newcombe_paired_diff,
    quantile_ci_levels,
    wilson_z,
)

NORMAL = NormalDist()
LANGUAGES = np.array([0.5, 0.25, 0.15, 0.10])  # en, de, fr, es: the slices
CRITERIA = ("divergence", "errors", "latency p95", "invalid format", "slices")
ALPHA = 0.05  # the watch's: 1 - [watch] confidence
GATE_ALPHA = 0.05  # the gate's: 1 - [gate] confidence, per criterion
MAX_SLICES = 100  # [watch] max_slices
LATENCY_SIGMA = 0.25  # lognormal shape of latencies (the demo's champion)


# -- vectorized statistics (checked against the library in self_check) --------------------
def lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma for x > 0: Stirling's series after shifting x above 8 (error < 1e-12)."""
    x = np.asarray(x, dtype=np.float64)
    shift = np.zeros_like(x)
    y = x.copy()
    for _ in range(8):
        small = y < 8
        shift = np.where(small, shift + np.log(np.where(small, y, 1.0)), shift)
        y = np.where(small, y + 1, y)
    inv = 1.0 / y
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    return (y - 0.5) * np.log(y) - y + 0.5 * math.log(2 * math.pi) + series - shift


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            x == 0, 0.0, x * np.log(np.where(y > 0, y, 1.0)) + np.where(y > 0, 0, -np.inf)
        )


def wilson(k: np.ndarray, n: np.ndarray | float, z: float) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n, dtype=np.float64)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return np.where(k == 0, 0.0, np.maximum(0, centre - half)), np.where(
        k == n, 1.0, np.minimum(1, centre + half)
    )


def newcombe_low(
    k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray, z: float
) -> np.ndarray:
    """Lower bound of p1 - p2 (Newcombe's hybrid score) at one-sided z."""
    l1, _ = wilson(k1, n1, z)
    _, h2 = wilson(k2, n2, z)
    p1, p2 = k1 / n1, k2 / n2
    return p1 - p2 - np.sqrt((p1 - l1) ** 2 + (h2 - p2) ** 2)


def newcombe_paired_low(plus: np.ndarray, minus: np.ndarray, n: float, z: float) -> np.ndarray:
    """Lower bound of p(challenger fails) - p(champion fails), Newcombe paired (both = 0)."""
    plus, minus = np.asarray(plus, dtype=np.float64), np.asarray(minus, dtype=np.float64)
    neither = n - plus - minus
    k1, k2 = plus, minus
    l1, _ = wilson(k1, n, z)
    _, h2 = wilson(k2, n, z)
    p1, p2 = k1 / n, k2 / n
    margins = plus * (minus + neither) * minus * (plus + neither)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(
            margins > 0, (0 - plus * minus) / np.sqrt(np.where(margins > 0, margins, 1)), 0.0
        )
    dl1, du2 = p1 - l1, h2 - p2
    delta = np.sqrt(np.maximum(0.0, dl1**2 - 2 * phi * dl1 * du2 + du2**2))
    return p1 - p2 - delta


def rate_cs_bounds(k: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The library's rate_cs, vectorized: bisection on the log-likelihood."""
    k = k.astype(np.float64)
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), k.shape)
    cutoff = lgamma(JEFFREYS + k) + lgamma(JEFFREYS + n - k) - lgamma(2 * JEFFREYS + n)
    cutoff -= 2 * lgamma(np.array(JEFFREYS)) - lgamma(np.array(2 * JEFFREYS))
    cutoff += math.log(alpha)
    centre = k / n

    def inside(p: np.ndarray) -> np.ndarray:
        return xlogy(k, p) + xlogy(n - k, 1 - p) > cutoff

    bounds = []
    for edge in (0.0, 1.0):
        inner, outer = centre.copy(), np.full_like(centre, edge)
        for _ in range(40):
            middle = (inner + outer) / 2
            ok = inside(middle)
            inner, outer = np.where(ok, middle, inner), np.where(ok, outer, middle)
        bounds.append(np.where(inside(np.full_like(centre, edge)), edge, inner))
    return bounds[0], bounds[1]


def difference_alarm(
    k1: np.ndarray, k2: np.ndarray, n1: np.ndarray, n2: np.ndarray, alpha: float
) -> np.ndarray:
    """Anytime: the CS of p1 - p2 (each rate at alpha/2) lies above 0.

    Only pairs whose Wilson intervals at z = 2.5 are already disjoint are computed
    exactly: the confidence sequences contain those intervals (self_check verifies
    it over the simulated range), so the others cannot alarm.
    """
    out = np.zeros(k1.shape, dtype=bool)
    low1, _ = wilson(k1, n1, 2.5)
    _, high2 = wilson(k2, n2, 2.5)
    maybe = np.nonzero(low1 > high2)[0]
    if maybe.size:
        n1b = np.broadcast_to(n1, k1.shape)[maybe]
        n2b = np.broadcast_to(n2, k2.shape)[maybe]
        cs1_low, _ = rate_cs_bounds(k1[maybe], n1b, alpha / 2)
        _, cs2_high = rate_cs_bounds(k2[maybe], n2b, alpha / 2)
        out[maybe] = cs1_low > cs2_high
    return out


def paired_alarm(plus: np.ndarray, minus: np.ndarray, n: float, alpha: float) -> np.ndarray:
    """Anytime: the paired CS of p(+) - p(-) lies above 0 (closed form at 0)."""
    zero = n - plus - minus
    log_mixture = (
        lgamma(np.array(3 * JEFFREYS))
        - 3 * lgamma(np.array(JEFFREYS))
        + lgamma(JEFFREYS + plus)
        + lgamma(JEFFREYS + minus)
        + lgamma(JEFFREYS + zero)
        - lgamma(np.array(3 * JEFFREYS + n))
    )
    discordant = plus + minus
    profile = xlogy(discordant, discordant / (2 * n)) + xlogy(zero, zero / n)
    return (plus > minus) & (profile <= log_mixture + math.log(alpha))


# -- latencies as histograms in probability space -------------------------------------------
EDGES = np.unique(
    np.concatenate(
        [
            np.linspace(0.0, 0.80, 17),
            np.linspace(0.80, 0.93, 27),
            np.linspace(0.93, 0.97, 201),
            np.linspace(0.97, 0.995, 26),
            np.linspace(0.995, 1.0, 6),
        ]
    )
)
WIDTHS = np.diff(EDGES)


def bin_probabilities(slowdown: float) -> np.ndarray:
    """Bin masses of a latency ``slowdown`` times the baseline's (lognormal), in the
    baseline's probability space: U' = Phi(Phi^-1(U) + ln(slowdown) / sigma)."""
    if slowdown == 1.0:
        return WIDTHS / WIDTHS.sum()
    shift = math.log(slowdown) / LATENCY_SIGMA
    cdf = (
        [0.0]
        + [NORMAL.cdf(NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12)) - shift) for u in EDGES[1:-1]]
        + [1.0]
    )
    masses = np.diff(np.array(cdf))
    return masses / masses.sum()


def quantile(counts: np.ndarray, level: float, n: float) -> np.ndarray:
    """Each watch's empirical quantile (in probability space) at ``level``."""
    rank = min(max(level, 0.0), 1.0) * n
    cumulative = np.cumsum(counts, axis=1)
    index = np.minimum((cumulative < rank).sum(axis=1), counts.shape[1] - 1)
    rows = np.arange(counts.shape[0])
    before = np.where(index > 0, cumulative[rows, np.maximum(index - 1, 0)], 0)
    inside = counts[rows, index]
    fraction = np.where(inside > 0, (rank - before) / np.maximum(inside, 1), 0.5)
    return EDGES[index] + np.clip(fraction, 0, 1) * WIDTHS[index]


def multinomial(rng: np.random.Generator, n: int, p: np.ndarray, size: int) -> np.ndarray:
    return rng.multinomial(n, p, size=size)


# -- one simulated fleet of watches ------------------------------------------------------------
@dataclass(frozen=True)
class Plant:
    """What the challenger does differently (nothing: an A/A twin)."""

    label: str = "A/A"
    error_factor: float = 1.0
    slowdown: float = 1.0
    slice_extra: float = 0.0  # extra divergence on the "de" slice
    onset_minute: int = 0


@dataclass
class Fleet:
    watches: int
    rate_per_minute: int
    rng: np.random.Generator
    plant: Plant
    divergence: float = 0.02
    error_rate: float = 0.01
    invalid_rate: float = 0.005
    first_alarm: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w, k = self.watches, len(LANGUAGES)
        self.n = 0
        self.slice_n = np.zeros((w, k))
        self.slice_div = np.zeros((2, w, k))  # challenger, control
        self.plus = np.zeros(w)
        self.minus = np.zeros(w)
        self.invalid = np.zeros((2, w))  # challenger, champion
        self.latency = np.zeros((2, w, len(WIDTHS)))  # challenger, control
        self.p_base = bin_probabilities(1.0)
        self.p_slow = bin_probabilities(self.plant.slowdown)

    def draw(self, minute: int) -> None:
        rng, w, n = self.rng, self.watches, self.rate_per_minute
        active = minute >= self.plant.onset_minute
        self.n += n
        per_slice = multinomial(rng, n, LANGUAGES, w)
        self.slice_n += per_slice
        extra = np.zeros(len(LANGUAGES))
        if active:
            extra[1] = self.plant.slice_extra
        self.slice_div[0] += rng.binomial(per_slice, self.divergence + extra)
        self.slice_div[1] += rng.binomial(per_slice, self.divergence)
        p_champion = self.error_rate
        p_challenger = self.error_rate * (self.plant.error_factor if active else 1.0)
        p_plus = p_challenger * (1 - p_champion)
        p_minus = p_champion * (1 - p_challenger)
        plus = rng.binomial(n, p_plus, w)
        self.plus += plus
        self.minus += rng.binomial(n - plus, p_minus / (1 - p_plus))
        self.invalid += rng.binomial(n, self.invalid_rate, (2, w))
        challenger_bins = self.p_slow if active else self.p_base
        self.latency[0] += multinomial(rng, n, challenger_bins, w)
        self.latency[1] += multinomial(rng, n, self.p_base, w)

    def alarms(self, anytime: bool, alpha: float, slice_family: int) -> dict[str, np.ndarray]:
        n = float(self.n)
        div = self.slice_div.sum(axis=2)
        out: dict[str, np.ndarray] = {}
        if anytime:
            out["divergence"] = difference_alarm(div[0], div[1], np.array(n), np.array(n), alpha)
            out["errors"] = paired_alarm(self.plus, self.minus, n, alpha)
            low, high = quantile_rank_cs(0.95, self.n, alpha / 2)
            out["invalid format"] = difference_alarm(
                self.invalid[0], self.invalid[1], np.array(n), np.array(n), alpha
            ) | (rate_low(self.invalid[0], n, alpha) > 0.01)
            per_slice = alpha / slice_family
            out["slices"] = np.zeros(self.watches, dtype=bool)
            for s in range(len(LANGUAGES)):
                out["slices"] |= difference_alarm(
                    self.slice_div[0][:, s],
                    self.slice_div[1][:, s],
                    self.slice_n[:, s],
                    self.slice_n[:, s],
                    per_slice,
                )
        else:
            z = NORMAL.inv_cdf(1 - alpha)
            out["divergence"] = newcombe_low(div[0], n, div[1], n, z) > 0
            out["errors"] = newcombe_paired_low(self.plus, self.minus, n, z) > 0
            low, high = quantile_ci_levels(0.95, self.n, 1 - alpha / 2)
            out["invalid format"] = (
                newcombe_low(self.invalid[0], n, self.invalid[1], n, z) > 0
            ) | (wilson(self.invalid[0], n, z)[0] > 0.01)
            per_slice_z = NORMAL.inv_cdf(1 - alpha / len(LANGUAGES))
            out["slices"] = np.zeros(self.watches, dtype=bool)
            for s in range(len(LANGUAGES)):
                ns = np.maximum(self.slice_n[:, s], 1)
                out["slices"] |= (
                    newcombe_low(
                        self.slice_div[0][:, s], ns, self.slice_div[1][:, s], ns, per_slice_z
                    )
                    > 0
                )
        if math.isinf(high):
            out["latency p95"] = np.zeros(self.watches, dtype=bool)
        else:
            out["latency p95"] = quantile(self.latency[0], low, n) > quantile(
                self.latency[1], high, n
            )
        return out


def rate_low(k: np.ndarray, n: float, alpha: float) -> np.ndarray:
    """Lower CS bound, only where the Wilson bound at z = 2.5 is above 1% (else 0)."""
    out = np.zeros(k.shape)
    maybe = np.nonzero(wilson(k, n, 2.5)[0] > 0.01)[0]
    if maybe.size:
        out[maybe] = rate_cs_bounds(k[maybe], np.full(maybe.size, n), alpha)[0]
    return out


METHODS = {
    "anytime-valid (shadow watch)": (True, ALPHA / len(CRITERIA), MAX_SLICES),
    "fixed-sample gate, every minute": (False, GATE_ALPHA, 0),
    "fixed-sample, alpha split": (False, ALPHA / len(CRITERIA), 0),
}


def simulate(
    plant: Plant, watches: int, minutes: int, rate_per_minute: int, seed: int, stop_when_all: bool
) -> dict[str, dict[str, np.ndarray]]:
    """Per method: the first alarm minute per criterion and overall ("any"), and the first
    alarm at or after the plant's onset ("after"); -1: never."""
    fleet = Fleet(watches, rate_per_minute, np.random.default_rng(seed), plant)
    first = {m: {c: np.full(watches, -1) for c in (*CRITERIA, "any", "after")} for m in METHODS}
    for minute in range(minutes):
        fleet.draw(minute)
        for method, (anytime, alpha, family) in METHODS.items():
            record = first[method]
            any_now = np.zeros(watches, dtype=bool)
            for criterion, alarmed in fleet.alarms(anytime, alpha, family).items():
                record[criterion][alarmed & (record[criterion] < 0)] = minute + 1
                any_now |= alarmed
            record["any"][any_now & (record["any"] < 0)] = minute + 1
            if minute >= plant.onset_minute:
                record["after"][any_now & (record["after"] < 0)] = minute + 1
        if stop_when_all and all((first[m]["after"] >= 0).all() for m in METHODS):
            break
    return first


def detection(first: dict[str, np.ndarray], onset: int) -> str:
    """Median / 90th percentile hours from onset to the first alarm after it, share
    detected, and the share that had already alarmed before the onset (false alarms)."""
    after = np.where(first["after"] >= 0, first["after"] - onset, -1).astype(float)
    found = after[after >= 0]
    share = found.size / after.size
    median = f"{np.median(found) / 60:.1f}" if found.size else "-"
    p90 = f"{np.quantile(found, 0.9) / 60:.1f}" if share >= 0.9 else "-"
    text = f"{median} / {p90} h ({share:.0%})"
    early = float(((first["any"] >= 0) & (first["any"] <= onset)).mean()) if onset else 0.0
    return text + (f", {early:.0%} early" if early else "")


# -- checks of the vectorized code against the library -----------------------------------------
def self_check(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for x in (0.5, 1.5, 3.0, 7.9, 8.0, 50.0, 1e6):
        assert abs(lgamma(np.array([x]))[0] - math.lgamma(x)) < 1e-9, x
    for _ in range(300):
        n = int(rng.integers(60, 2_000_000))
        k1, k2 = (int(v) for v in rng.binomial(n, rng.uniform(0, 0.1), 2))
        alpha = float(rng.choice([0.01, 0.0001]))
        low, high = rate_cs_bounds(np.array([k1]), np.array([n]), alpha)
        ref = rate_cs(k1, n, alpha)
        assert abs(low[0] - ref.low) < 1e-9 and abs(high[0] - ref.high) < 1e-9
        # the prefilter's premise: the CS contains the Wilson interval at z = 2.5
        w_low, w_high = wilson_z(k1, n, 2.5).low, wilson_z(k1, n, 2.5).high
        assert ref.low <= w_low + 1e-12 and ref.high >= w_high - 1e-12, (k1, n, alpha)
        plus, minus = int(rng.binomial(n, 0.012)), int(rng.binomial(n, 0.01))
        exact = paired_difference_cs(0, plus, minus, n, alpha).low > 0
        assert paired_alarm(np.array([plus]), np.array([minus]), n, alpha)[0] == exact
        z = NORMAL.inv_cdf(1 - alpha)
        assert (
            abs(
                newcombe_low(np.array([k1]), n, np.array([k2]), n, z)[0]
                - newcombe_diff(k1, n, k2, n, 1 - 2 * alpha).low
            )
            < 1e-9
        )
        assert (
            abs(
                newcombe_paired_low(np.array([plus]), np.array([minus]), n, z)[0]
                - newcombe_paired_diff(0, plus, minus, n, 1 - 2 * alpha).low
            )
            < 1e-9
        )


# -- the report ----------------------------------------------------------------------------------
def fraction(first: np.ndarray) -> float:
    return float((first >= 0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--watches", type=int, default=1000, help="A/A watches (default 1000)")
    parser.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    parser.add_argument(
        "--rate", type=float, default=2.0, help="compared requests per second (default 2)"
    )
    parser.add_argument(
        "--detect-watches", type=int, default=200, help="watches per planted regression"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    minutes = int(args.days * 24 * 60)
    per_minute = max(1, round(args.rate * 60))
    self_check(args.seed)
    print(
        f"{args.watches:,} A/A watches x {minutes:,} checks (every simulated minute, {args.days:g} days), "
        f"{per_minute} comparisons/min ({args.rate:g}/s), {per_minute * minutes:,} per watch"
    )
    print(
        "alarm = a criterion confidently worse than its baseline (margin 0), or invalid format > 1%;"
        f" watch alpha {ALPHA:.0%} split over {len(CRITERIA)} criteria, slices at alpha/{MAX_SLICES}\n"
    )
    started = time.perf_counter()
    aa = simulate(Plant(), args.watches, minutes, per_minute, args.seed, stop_when_all=False)
    elapsed = time.perf_counter() - started
    print(f"A/A: fraction of watches that EVER alarmed ({elapsed:.0f} s to simulate)")
    header = f"  {'method':34}{'any':>8}" + "".join(f"{c:>16}" for c in CRITERIA)
    print(header)
    for method in METHODS:
        row = f"  {method:34}{fraction(aa[method]['any']):>8.1%}"
        row += "".join(f"{fraction(aa[method][c]):>16.1%}" for c in CRITERIA)
        print(row)
    print("  target for the watch: <= 5.0%\n")

    plants = [
        Plant("2x error rate (1% -> 2%)", error_factor=2.0),
        Plant("+30% p95 latency", slowdown=1.3),
        Plant("+5 points divergence on language=de", slice_extra=0.05),
    ]
    print(
        f"Planted regressions, {args.detect_watches} watches each: time to the first alarm "
        "(median / 90th percentile; share detected within the run)"
    )
    print(f"  {'regression':38}{'onset':>8}  " + "".join(f"{m:>34}" for m in METHODS))
    for i, plant in enumerate(plants):
        for onset in (0, 24 * 60):
            if onset >= minutes:
                continue
            planted = Plant(
                plant.label, plant.error_factor, plant.slowdown, plant.slice_extra, onset
            )
            first = simulate(
                planted, args.detect_watches, minutes, per_minute, args.seed + 10 + i, True
            )
            cells = "".join(f"{detection(first[m], onset):>34}" for m in METHODS)
            print(f"  {plant.label:38}{f'day {onset // 1440 + 1}':>8}  {cells}")
    print(
        "\n'early': watches that had already alarmed during the healthy first day (false alarms)."
    )


if __name__ == "__main__":
    main()
