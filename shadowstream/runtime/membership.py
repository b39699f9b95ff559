"""A consumer's standing in its group: what it owns, since when, and whether it was fenced.

Pure bookkeeping (no Kafka), driven by the rebalance callbacks and by the agent
when a commit tells it the group moved on. Two things depend on it:

* *fencing*: once this member learns it lost its partitions (UNKNOWN_MEMBER_ID,
  ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS on a commit, a broker that lost its
  data), everything it consumed but did not commit belongs to the next owner.
  It stops handing out messages and committing until the group assigns
  partitions again; if librdkafka does not rejoin on its own within
  ``rejoin_after_s``, the consumer re-subscribes, which forces a new member id.
* *readiness*: how long the member has held no partition at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Partition = tuple[str, int]


class Membership:
    def __init__(
        self, name: str, rejoin_after_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.rejoin_after_s = rejoin_after_s
        self._clock = clock
        self.assigned: set[Partition] = set()
        self.generation = 0  # bumped by every assignment change seen here
        self.joined = False  # an assignment arrived since the last revoke/loss
        self._unassigned_since: float | None = clock()
        self.fenced: str | None = None
        self._fenced_at: float | None = None
        self._rejoin_due: float | None = None
        self.counts = {"assignments": 0, "revocations": 0, "losses": 0, "fences": 0, "rejoins": 0}

    # -- rebalance callbacks ------------------------------------------------------------
    def on_assign(self, partitions: Iterable[Partition]) -> None:
        self.assigned |= set(partitions)
        self.generation += 1
        self.joined = True
        self.counts["assignments"] += 1
        if self.fenced is not None:
            log.info("%s: rejoined the group after %s", self.name, self.fenced)
        self.fenced = None
        self._fenced_at = None
        self._rejoin_due = None
        self._update_unassigned()

    def on_revoke(self, partitions: Iterable[Partition]) -> None:
        self.assigned -= set(partitions)
        self.generation += 1
        self.joined = False
        self.counts["revocations"] += 1
        self._update_unassigned()

    def on_lost(self, partitions: Iterable[Partition]) -> None:
        self.on_revoke(partitions)
        self.counts["losses"] += 1

    def _update_unassigned(self) -> None:
        if self.assigned:
            self._unassigned_since = None
        elif self._unassigned_since is None:
            self._unassigned_since = self._clock()

    # -- fencing ----------------------------------------------------------------------
    def fence(self, reason: str, *, rejoin_now: bool = False) -> None:
        """Stop using the current assignment until the group hands out a new one."""
        now = self._clock()
        if self.fenced is None:
            self._fenced_at = now
            self.counts["fences"] += 1
            log.warning(
                "%s: %s; dropping uncommitted work and rejoining the group", self.name, reason
            )
        self.fenced = reason
        due = now if rejoin_now else now + self.rejoin_after_s
        self._rejoin_due = due if self._rejoin_due is None else min(self._rejoin_due, due)

    def take_rejoin(self) -> bool:
        """True once when a fenced member should re-subscribe itself."""
        if self.fenced is None or self._rejoin_due is None or self._clock() < self._rejoin_due:
            return False
        self.counts["rejoins"] += 1
        self._rejoin_due = self._clock() + self.rejoin_after_s  # again, if that one stalls too
        return True

    # -- health -----------------------------------------------------------------------
    def unassigned_for(self) -> float:
        """Seconds without a usable partition: none assigned, or fenced (0 otherwise)."""
        now = self._clock()
        since = [t for t in (self._unassigned_since, self._fenced_at) if t is not None]
        return now - min(since) if since else 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "partitions": len(self.assigned),
            "joined": self.joined,
            "fenced": self.fenced,
            "unassigned_s": round(self.unassigned_for(), 1),
            **self.counts,
        }
