"""Which event timestamps the pipeline can keep, and a cheap way to read one.

``timestamp_us`` is any Avro long, but ClickHouse cannot keep every value
honestly: a row older than the retention is dropped by the table's TTL as it is
inserted (so a request stamped 0 would be compared and then vanish), and
values far outside the DateTime64 range are stored wrapped (-2**63 reads back
as year 0, which no client can turn into a date). An event whose timestamp is
older than the retention or further ahead of this machine's clock than the
allowed skew is therefore refused, as ``bad_timestamp``, by the router and by
the sink (for the raw events it stores), instead of being stored wrong.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shadowstream.schemas.varint import read_long

_DAY_S = 86_400.0


def describe_us(timestamp_us: int) -> str:
    """A timestamp for a message: ISO 8601 when a date can show it, else the number."""
    try:
        when = dt.datetime.fromtimestamp(timestamp_us / 1_000_000, dt.UTC)
    except (OverflowError, ValueError, OSError):
        return f"{timestamp_us} us"
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class EventTimeWindow:
    """Event timestamps (epoch microseconds) the warehouse keeps: from ``max_age_s``
    before now (the retention) to ``max_ahead_s`` after it (producers' clock skew)."""

    max_age_s: float
    max_ahead_s: float
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @classmethod
    def for_retention(
        cls, retention_days: int, max_clock_skew_s: float, clock: Callable[[], float] = time.time
    ) -> EventTimeWindow:
        return cls(retention_days * _DAY_S, max_clock_skew_s, clock)

    def problem(self, timestamp_us: int) -> str | None:
        """Why this timestamp cannot be kept, or None if it can."""
        now = self.clock()
        seconds = timestamp_us / 1_000_000
        if seconds < now - self.max_age_s:
            days = self.max_age_s / _DAY_S
            return (
                f"timestamp_us {describe_us(timestamp_us)} is older than the {days:g}-day retention"
            )
        if seconds > now + self.max_ahead_s:
            return (
                f"timestamp_us {describe_us(timestamp_us)} is more than {self.max_ahead_s:g} s "
                "ahead of this clock"
            )
        return None


def peek_second_long(body: bytes) -> int | None:
    """The long after a leading string in an Avro body (request and response events:
    ``request_id``, then ``timestamp_us``); None if the body is too damaged to tell."""
    try:
        length, pos = _varint(body, 0)
        if length < 0 or pos + length > len(body):
            return None
        value, _ = _varint(body, pos + length)
    except (IndexError, ValueError):
        return None
    return value


def _varint(body: bytes, pos: int) -> tuple[int, int]:
    c = body[pos]
    if c < 0x80:
        return (c >> 1) ^ -(c & 1), pos + 1
    return read_long(body, pos)
