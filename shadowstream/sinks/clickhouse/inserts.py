"""Storing one sink batch in ClickHouse (on an executor thread): one INSERT per kind, in
order, and the rows ClickHouse refuses isolated and set aside (see
:mod:`~shadowstream.sinks.clickhouse.isolation`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Histogram

from shadowstream.core.errors import WarehouseRejectedError
from shadowstream.sinks.clickhouse.isolation import RowIsolation, strict_check
from shadowstream.sinks.clickhouse.sink_batch import INSERT_ORDER, SinkBatch, SinkKind
from shadowstream.warehouse.client import Warehouse

log = logging.getLogger("shadowstream.sinks.clickhouse.sink")  # the sink's log, as before


class BatchInserter:
    """Inserts batches; ``counters`` and ``insert_seconds`` are the sink's own (shared)."""

    def __init__(
        self,
        warehouse: Callable[[], Warehouse],
        kinds: dict[str, SinkKind],
        counters: dict[str, int],
        insert_seconds: Histogram,
    ) -> None:
        self.warehouse = warehouse
        self.kinds = kinds  # by name
        self.counters = counters
        self.insert_seconds = insert_seconds

    def insert(self, batch: SinkBatch) -> None:
        """Insert each kind not inserted yet, isolating rows ClickHouse refuses."""
        for name in sorted(batch.bodies, key=INSERT_ORDER.index):
            bodies = batch.bodies[name]
            if name in batch.inserted:
                continue
            kind = self.kinds[name]
            started = time.monotonic()
            try:
                self.warehouse().insert_avro(kind.table, kind.codec.schema, bodies)
                stored = len(bodies)
            except WarehouseRejectedError as exc:
                log.warning("sink: ClickHouse refused rows of %s (%s); isolating them", name, exc)
                stored = self._isolate(batch, name, kind)
            batch.inserted.add(name)
            self.counters[f"inserted_{name}"] += stored
            elapsed = time.monotonic() - started
            self.counters[f"insert_ms_{name}"] += round(elapsed * 1000)
            self.insert_seconds.labels(name).observe(elapsed)

    def _isolate(self, batch: SinkBatch, name: str, kind: SinkKind) -> int:
        """Store the rows of one kind ClickHouse accepts, set the others aside; how many
        stored. Stopped by an outage, it leaves only the rows still to store in the batch."""
        bodies, sources = batch.bodies[name], batch.sources[name]
        isolation = RowIsolation(
            bodies,
            lambda part: self.warehouse().insert_avro(kind.table, kind.codec.schema, part),
            strict_check(kind.codec),
        )
        self.counters["isolated_batches"] += 1
        try:
            isolation.run()
        finally:
            self.counters["isolation_inserts"] += isolation.inserts
            for i, reason, detail in isolation.rejected:
                batch.rejected.append((sources[i], reason, detail))
            left = isolation.remaining()
            batch.bodies[name] = [bodies[i] for i in left]
            batch.sources[name] = [sources[i] for i in left]
            batch.rows -= len(bodies) - len(left)
        return len(isolation.stored)
