"""Health of an agent, as the web endpoints report it.

Two questions, kept apart as Kubernetes does:

* *live*: should this process be restarted? Only if an agent crashed, its
  thread ended, or it made no progress for ``stall_timeout_s`` while the
  broker answered (waiting for an unreachable broker is not a fault a restart
  fixes).
* *ready*: is it doing its job right now? Not while starting, while the
  broker is unreachable, while it holds no partition for longer than a
  rebalance takes, or while it cannot deliver its results (the sink and
  ClickHouse).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AgentHealth:
    name: str
    phase: str  # created, starting, running, stopping, stopped, failed
    crashed: bool
    stalled_s: float  # since the last finished step (0 when not running)
    stall_timeout_s: float
    reasons: list[str]  # why it is not ready (empty: ready)
    membership: dict[str, Any] | None = None

    @property
    def stalled(self) -> bool:
        return self.stalled_s > self.stall_timeout_s

    @property
    def ready(self) -> bool:
        return not self.reasons and not self.crashed

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stalled_s"] = round(self.stalled_s, 1)
        out["ready"] = self.ready
        return out


class RateLimitedLog:
    """A warning at most every ``interval_s`` per message format (with how many were held back)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, fmt: str, *args: Any) -> bool:
        """Log unless the same format was logged less than ``interval_s`` ago."""
        now = self._clock()
        last, held = self._last.get(fmt, (None, 0))
        if last is not None and now - last < self._interval:
            self._last[fmt] = (last, held + 1)
            return False
        self._last[fmt] = (now, 0)
        suffix = f" ({held} more like it held back)" if held else ""
        self._log.warning(fmt + suffix, *args)
        return True
