"""Distributions kept as binned histograms in the rollups, decoded here.

Two binnings, both written by SQL in the migrations and mirrored by
:func:`log_key` / :func:`linear_key`:

* **log** (resources, sinks/clickhouse/sql/0041_resources.sql): key ``i``
  holds values in ``(1.02^(i-1), 1.02^i]``, key ``ZERO_KEY`` holds 0 (and
  anything below it). Each bin is 2% wide, so a quantile read at the bin's
  log-midpoint is within 1% of the true value (the DDSketch bound); below ~50
  each bin holds at most one integer, so integer metrics (tokens, tool calls)
  come out exactly.
* **linear** (measures, 0040_measures.sql): key = ``round(value * 1000)``:
  values to within 0.0005, integers exactly.

A histogram also gives the share of values above any limit chosen at report
time: bins wholly above or below the limit count exactly; the one bin that
straddles it (within 2% of the limit) is split in proportion - by the
integers on each side for integer metrics, log-uniformly otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from shadowstream.analytics.stats import Interval, quantile_ci_levels, two_sided_z

LOG_BASE = 1.02
ZERO_KEY = -32768
KEY_RANGE = 32000
LINEAR_SCALE = 1000
_EPS = 1e-9

Binning = Literal["log", "linear"]


def log_key(value: float) -> int:
    """The log bin of a value, as the rollup's SQL computes it."""
    if value <= 0:
        return ZERO_KEY
    key = math.ceil(math.log(value) / math.log(LOG_BASE))
    return max(min(key, KEY_RANGE), -KEY_RANGE)


def linear_key(value: float) -> int:
    """The linear bin of a value (ClickHouse ``round`` rounds half away from zero)."""
    scaled = value * LINEAR_SCALE
    return math.floor(abs(scaled) + 0.5) * (1 if scaled >= 0 else -1)


@dataclass(frozen=True)
class Histogram:
    """Counts per bin, sorted by key; ``integer`` when the values are whole numbers."""

    bins: tuple[tuple[int, int], ...]
    binning: Binning = "log"
    integer: bool = False

    @classmethod
    def of(
        cls, counts: Mapping[int, int] | None, binning: Binning = "log", integer: bool = False
    ) -> Histogram:
        items = sorted((int(k), int(v)) for k, v in (counts or {}).items() if int(v) > 0)
        return cls(tuple(items), binning, integer)

    @classmethod
    def from_values(
        cls, values: Iterable[float], binning: Binning = "log", integer: bool = False
    ) -> Histogram:
        """Bin raw values the way the rollups do (tests, and small exact computations)."""
        key = log_key if binning == "log" else linear_key
        counts: dict[int, int] = {}
        for value in values:
            k = key(value)
            counts[k] = counts.get(k, 0) + 1
        return cls.of(counts, binning, integer)

    @property
    def n(self) -> int:
        return sum(count for _, count in self.bins)

    def merged(self, other: Histogram) -> Histogram:
        counts = dict(self.bins)
        for key, count in other.bins:
            counts[key] = counts.get(key, 0) + count
        return Histogram.of(counts, self.binning, self.integer)

    # -- bins ----------------------------------------------------------------------------------
    def bounds(self, key: int) -> tuple[float, float]:
        """The values a bin holds: ``(low, high]`` for log bins, around the key for linear."""
        if self.binning == "linear":
            return (key - 0.5) / LINEAR_SCALE, (key + 0.5) / LINEAR_SCALE
        if key == ZERO_KEY:
            return 0.0, 0.0
        return LOG_BASE ** (key - 1), LOG_BASE**key

    def _integers(self, low: float, high: float) -> range:
        """Integers in ``(low, high]`` (a hair of tolerance for floating point)."""
        return range(math.floor(low * (1 + _EPS)) + 1, math.floor(high * (1 + _EPS)) + 1)

    def value(self, key: int) -> float:
        """The bin's representative value: its only integer, or its (log-)midpoint."""
        if self.binning == "linear":
            return key / LINEAR_SCALE
        if key == ZERO_KEY:
            return 0.0
        low, high = self.bounds(key)
        middle = 2 * high / (LOG_BASE + 1)
        if self.integer:
            whole = self._integers(low, high)
            if len(whole) >= 1:
                return float(min(max(round(middle), whole[0]), whole[-1]))
        return middle

    # -- statistics ----------------------------------------------------------------------------
    def quantile(self, q: float) -> float | None:
        """The q-quantile (nearest rank: the smallest value with at least q of the data at or
        below it); None when empty."""
        total = self.n
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total - _EPS))
        seen = 0
        for key, count in self.bins:
            seen += count
            if seen >= rank:
                return self.value(key)
        return self.value(self.bins[-1][0])

    def quantile_bounds(self, q: float, confidence: float) -> tuple[float, float] | None:
        """One-sided order-statistic bounds of the q-quantile, each at ``confidence``
        (distribution-free: analytics.stats.quantile_ci_levels)."""
        total = self.n
        if total == 0:
            return None
        low_level, high_level = quantile_ci_levels(q, total, confidence)
        low = self.quantile(low_level) if low_level > 0 else self.value(self.bins[0][0])
        high = self.quantile(min(high_level, 1.0))
        assert low is not None and high is not None
        return low, high

    def count_over(self, limit: float) -> float:
        """How many values are above ``limit`` (the straddling bin split in proportion)."""
        over = 0.0
        for key, count in self.bins:
            low, high = self.bounds(key)
            if self.binning == "log" and key == ZERO_KEY:
                over += count if limit < 0 else 0
            elif low >= limit:
                over += count
            elif high > limit:
                over += count * self._share_above(low, high, limit)
        return over

    def _share_above(self, low: float, high: float, limit: float) -> float:
        if self.integer:
            whole = self._integers(low, high)
            if not whole:
                return 0.0
            return sum(1 for i in whole if i > limit) / len(whole)
        if self.binning == "linear" or low <= 0:
            return (high - limit) / (high - low)
        return math.log(high / limit) / math.log(high / low)

    def share_over(self, limit: float) -> float | None:
        total = self.n
        return self.count_over(limit) / total if total else None

    def counts_by(self, edges: list[float]) -> list[int]:
        """Counts per display bin ``[edges[i], edges[i+1])``; the last bin is open above."""
        out = [0] * len(edges)
        for key, count in self.bins:
            value = self.value(key)
            index = 0
            for i, edge in enumerate(edges):
                if value >= edge - _EPS:
                    index = i
            out[index] += count
        return out


@dataclass(frozen=True)
class Moments:
    """n, sum and sum of squares: a mean with its interval."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def std(self) -> float | None:
        """The sample standard deviation (n - 1); None below two values."""
        if self.n < 2:
            return None
        mean = self.total / self.n
        variance = max(self.total_sq - self.n * mean * mean, 0.0) / (self.n - 1)
        return math.sqrt(variance)

    @property
    def std_error(self) -> float | None:
        std = self.std
        return None if std is None else std / math.sqrt(self.n)

    def interval(self, confidence: float) -> Interval | None:
        """Normal-approximation interval of the mean (the CLT; fine from a few dozen values)."""
        mean, se = self.mean, self.std_error
        if mean is None or se is None:
            return None
        z = two_sided_z(confidence)
        return Interval(mean - z * se, mean + z * se)
