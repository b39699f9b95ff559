"""Flow control of a run: a request rate, and a window of requests in flight.

The rate (``--rate``, requests/s) is the budget a run may take from the
challenger. The in-flight window keeps batch requests from queueing in front
of the workers: a request that waits longer than the join window is
abandoned by the worker (its join already closed it as challenger_missing).
By Little's law, in-flight = throughput x time in flight, so the window is
sized from the measured answer rate to keep the time from submit to
answer near ``target_delay_s`` (a quarter of the join window, at most 2 s);
never below ``floor`` (what the workers' batch share can work on at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from shadowstream.core.config import Settings


class RateLimiter:
    """Token bucket; bursts up to a quarter second's worth (at least one request)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate * 0.25)
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next request may go."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)


class InFlightWindow:
    def __init__(self, floor: int, cap: int, target_delay_s: float) -> None:
        self.floor = max(1, floor)
        self.cap = max(self.floor, cap)
        self.target_delay_s = target_delay_s

    def limit(self, resolved_per_s: float) -> int:
        return int(min(self.cap, max(self.floor, resolved_per_s * self.target_delay_s)))


def in_flight_floor(settings: Settings, challengers: Sequence[str], default: int) -> int:
    """The window's floor: half the smallest concurrency of the run's challengers
    (``default`` when one of them is not in this configuration)."""
    known = {s.name: s for s in settings.challengers}
    floors = [max(1, known[n].concurrency // 2) for n in challengers if n in known]
    return min(floors) if len(floors) == len(challengers) else default


def run_rate(
    settings: Settings, challengers: Sequence[str], provider_names: Collection[str], rate: float
) -> float:
    """The run's rate, at most half of any challenger's max_rps (the rest is live's)."""
    known = {s.name: s for s in settings.challengers}
    for name in challengers:
        if name in provider_names:
            continue  # answered by its batch API: no live calls to spare
        spec = known.get(name)
        if spec is not None and spec.max_rps is not None:
            rate = min(rate, spec.max_rps / 2)
    return rate
