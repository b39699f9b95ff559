"""Find the rows ClickHouse refuses in a batch it refused, and store the others.

A batch insert is all or nothing: one row ClickHouse cannot take (a value out
of range for a column, a body its Avro reader refuses, rows spanning too many
partitions at once) fails every row with it. :class:`RowIsolation`:

1. sets aside the bodies our strict codec refuses (cheap: no insert needed);
2. inserts the rest; while ClickHouse refuses a part for its rows, splits
   the part in two and tries each half, so k bad rows among n cost about
   2·k·log2(n/k) inserts, and each row refused on its own is set aside with
   ClickHouse's message.

Anything else (ClickHouse unreachable, or an error about the server or the
tables rather than rows) stops it and propagates: the caller pauses and retries
later, and :meth:`RowIsolation.remaining` tells which rows are still to store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shadowstream.core.errors import SchemaError, WarehouseRejectedError
from shadowstream.schemas.codec import MAGIC, EventCodec

Insert = Callable[[list[bytes]], None]
Check = Callable[[bytes], tuple[str, str] | None]  # body -> (reason, detail) if refused


@dataclass
class RowIsolation:
    bodies: Sequence[bytes]
    insert: Insert
    check: Check
    stored: set[int] = field(default_factory=set)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # index, reason, detail
    inserts: int = 0
    _pending: list[list[int]] = field(default_factory=list)
    _checked: bool = False

    def run(self) -> None:
        """Store every row ClickHouse accepts; set aside the others (see the module)."""
        if not self._checked:
            keep: list[int] = []
            for i, body in enumerate(self.bodies):
                refused = self.check(body)
                if refused is None:
                    keep.append(i)
                else:
                    self.rejected.append((i, *refused))
            self._checked = True
            if keep:
                self._pending.append(keep)
        while self._pending:
            part = self._pending[-1]
            try:
                self.inserts += 1
                self.insert([self.bodies[i] for i in part])
            except WarehouseRejectedError as exc:
                self._pending.pop()
                if len(part) == 1:
                    self.rejected.append((part[0], "clickhouse_rejected", _message(exc)))
                else:
                    middle = len(part) // 2
                    self._pending += [part[middle:], part[:middle]]  # first half next
                continue
            self._pending.pop()
            self.stored.update(part)

    def remaining(self) -> list[int]:
        """Rows neither stored nor set aside (after run() stopped on another error)."""
        done = self.stored | {i for i, _, _ in self.rejected}
        return [i for i in range(len(self.bodies)) if i not in done]


def _message(exc: WarehouseRejectedError) -> str:
    text = str(exc).removeprefix("ClickHouse refused the data: ")
    return text.removeprefix("ClickHouse error: ")


def strict_check(codec: EventCodec[Any]) -> Check:
    """A body that our strict decoder refuses, with its reason; no insert needed."""
    header = MAGIC + codec.fingerprint

    def check(body: bytes) -> tuple[str, str] | None:
        try:
            codec.decode(header + body)
        except SchemaError as exc:
            return getattr(exc, "reason", "invalid"), str(exc)
        return None

    return check
