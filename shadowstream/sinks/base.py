"""The sink contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class EventSink(Protocol):
    """Stores a batch of events of one kind, all or nothing.

    ``kind`` is ``comparisons``, ``requests`` or ``responses``; ``bodies`` are
    Avro binary bodies written with ``writer_schema`` (the single-object header
    already stripped). ``write`` returns only once the store has acknowledged
    the batch, and raises WarehouseUnavailableError when it may succeed later.
    """

    def write(
        self, kind: str, writer_schema: dict[str, object], bodies: Sequence[bytes]
    ) -> None: ...
