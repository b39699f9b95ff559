"""A monotonic clock that leaves out the time this process was not running.

A router frozen for longer than a join window (SIGSTOP, a VM freeze, swapping,
a restore of many markers inside a rebalance) would otherwise wake up and
close every open request as ``challenger_missing`` before reading the answers
that reached Kafka meanwhile. Windows measure how long a challenger takes to
answer; the router's own absence is not the challenger's delay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shadowstream.runtime.health import RateLimitedLog

log = logging.getLogger(__name__)


class RunningClock:
    """``tick()`` at the points where the owner runs regularly; any gap between two ticks
    longer than ``max_gap_s`` counts only as ``max_gap_s``."""

    def __init__(self, max_gap_s: float = 1.0, source: Callable[[], float] = time.monotonic):
        self.max_gap_s = max_gap_s
        self._source = source
        self._last = source()
        self.skipped_s = 0.0
        self._log = RateLimitedLog(log, 60.0)

    def tick(self) -> None:
        now = self._source()
        gap = now - self._last
        self._last = now
        if gap > self.max_gap_s:
            self.skipped_s += gap - self.max_gap_s
            self._log.warning(
                "did not run for %.1fs (stalled, or waiting for the broker): "
                "join windows leave that time out",
                gap,
            )

    def __call__(self) -> float:
        return self._source() - self.skipped_s
