"""The sink's store pipeline: the next batch fills while one is stored, and offsets
are committed in batch order, only after every insert of their batch.

Kafka and ClickHouse are fakes here (the integration tests run the same code
against the real broker and chDB, including an outage and a kill mid-batch); what
these pin down is the ordering, which the real services make hard to force.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from shadowstream.core.errors import WarehouseUnavailableError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.runtime.kafka_io import DeadLetters
from shadowstream.schemas import COMPARISON
from shadowstream.sinks.clickhouse.sink import ClickHouseSinkService

TOPICS = TopicNames("t")


def comparison(rid: str) -> bytes:
    return COMPARISON.encode(
        {
            "request_id": rid,
            "challenger": "c",
            "outcome": "both_answered",
            "request_ts_us": 1,
            "compared_at_us": 2,
            "champion_status": "ok",
            "challenger_status": "ok",
        }
    )


class FakeMessage:
    def __init__(self, offset: int, value: bytes, partition: int = 0) -> None:
        self._offset, self._value, self._partition = offset, value, partition

    def topic(self) -> str:
        return TOPICS.comparisons

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


class FakeConsumer:
    """Hands out queued messages; records commits (as {partition: offset})."""

    def __init__(self) -> None:
        self.queue: list[FakeMessage] = []
        self.commits: list[dict[int, int]] = []
        self.paused = False
        self.next_offset = 0

    def feed(self, n: int) -> None:
        for _ in range(n):
            self.queue.append(FakeMessage(self.next_offset, comparison(f"r{self.next_offset}")))
            self.next_offset += 1

    async def poll(self, max_messages: int, timeout: float) -> list[FakeMessage]:
        await asyncio.sleep(0.001)
        if self.paused:
            return []
        taken, self.queue = self.queue[:max_messages], self.queue[max_messages:]
        return taken

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def commit_sync(self, offsets: Sequence[TopicPartition]) -> None:
        self.commits.append({tp.partition: tp.offset for tp in offsets})

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self.paused = True

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self.paused = False

    def assigned_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(TOPICS.comparisons, 0)]

    async def close(self) -> None:
        pass


class FakeProducer:
    def poll(self, timeout: float = 0) -> int:
        return 0

    async def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class GatedWarehouse:
    """Each insert waits for the gate; while ``down``, inserts fail as an outage would."""

    database = "shadow"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.down = False
        self.rows: list[int] = []  # rows per successful insert
        self.attempts = 0

    def insert_avro(
        self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
    ) -> None:
        self.attempts += 1
        assert self.gate.wait(10), "test never opened the gate"
        if self.down:
            raise WarehouseUnavailableError("ClickHouse is away")
        self.rows.append(len(bodies))


def make_sink(warehouse: GatedWarehouse, batch_rows: int = 100) -> Any:
    factory: Any = lambda: warehouse  # noqa: E731 - duck-typed Warehouse
    sink: Any = ClickHouseSinkService(
        kafka=KafkaClientConfig("127.0.0.1:1"),
        topics=TOPICS,
        warehouse_factory=factory,
        batch_rows=batch_rows,
        batch_seconds=0.0,  # a batch is due as soon as it has anything
        raw_events=False,
        backoff_initial_s=0.0,
        backoff_max_s=0.0,
    )
    sink.consumer = FakeConsumer()
    sink.producer = FakeProducer()
    sink.deadletters = DeadLetters(sink.producer, TOPICS.deadletter, "sink")
    return sink


async def steps(sink: Any, n: int = 20) -> None:
    for _ in range(n):
        await sink.step()
        await asyncio.sleep(0.001)


async def until(condition: Callable[[], bool], sink: Any, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await sink.step()
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(30)
def test_the_next_batch_fills_while_one_is_stored_and_commits_follow_inserts() -> None:
    warehouse = GatedWarehouse()
    sink = make_sink(warehouse)
    consumer: FakeConsumer = sink.consumer

    async def scenario() -> None:
        consumer.feed(30)
        await steps(sink, 3)  # batch 1 (30 rows) goes to the store, which blocks
        assert warehouse.attempts == 1
        consumer.feed(50)
        await steps(sink)
        # consumption went on during the insert; nothing is committed before it ends
        assert consumer.queue == []
        assert sink.metrics()["pending_rows"] == 80
        assert consumer.commits == []
        warehouse.gate.set()
        await until(lambda: len(consumer.commits) == 2, sink, "both batches committed")
        assert warehouse.rows == [30, 50]
        assert consumer.commits == [{0: 30}, {0: 80}]  # in order, each after its insert
        await steps(sink, 2)
        assert sink.metrics()["pending_rows"] == 0

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_a_failed_batch_holds_back_the_next_and_memory_stays_at_two_batches() -> None:
    warehouse = GatedWarehouse()
    warehouse.down = True
    sink = make_sink(warehouse, batch_rows=100)
    consumer: FakeConsumer = sink.consumer

    async def scenario() -> None:
        consumer.feed(100)
        await steps(sink, 2)  # batch 1 is being stored
        consumer.feed(500)
        await steps(sink, 5)  # batch 2 fills (100 rows) while batch 1 waits at the gate
        warehouse.gate.set()  # batch 1 fails: consumption pauses, batch 2 waits behind it
        await until(lambda: consumer.paused, sink, "the sink to pause")
        await steps(sink, 30)
        metrics = sink.metrics()
        assert metrics["paused"] is True
        assert metrics["pending_rows"] == 200  # two batches, no more
        assert metrics["insert_failures"] >= 1
        assert consumer.commits == []
        assert warehouse.rows == []  # the second batch was never inserted ahead of the first
        warehouse.down = False
        await until(
            lambda: not consumer.queue and not sink.metrics()["pending_rows"], sink, "catch-up"
        )
        assert warehouse.rows[:2] == [100, 100]
        assert sum(warehouse.rows) == 600
        offsets = [c[0] for c in consumer.commits]
        assert offsets == sorted(offsets) and offsets[:2] == [100, 200] and offsets[-1] == 600

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_a_batch_stored_across_a_revocation_does_not_commit() -> None:
    warehouse = GatedWarehouse()
    sink = make_sink(warehouse)
    consumer: FakeConsumer = sink.consumer

    async def scenario() -> None:
        consumer.feed(10)
        await steps(sink, 3)  # the batch is being stored
        consumer.feed(5)
        await steps(sink, 3)
        sink._on_revoke([])  # what poll() does on a rebalance
        assert sink.metrics()["pending_rows"] == 10  # the filling batch is dropped
        warehouse.gate.set()
        await until(lambda: sink._store is None, sink, "the store to end")
        assert warehouse.rows == [10]  # the insert finished (it is idempotent) ...
        assert consumer.commits == []  # ... but the new owner re-reads from the old offset

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_stopping_while_a_store_fails_does_not_commit_the_batch_behind_it() -> None:
    class FailsOnce(GatedWarehouse):
        def insert_avro(
            self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
        ) -> None:
            self.down = self.attempts == 0  # ClickHouse is back right after the first try
            super().insert_avro(table, writer_schema, bodies)

    warehouse = FailsOnce()
    sink = make_sink(warehouse)
    consumer: FakeConsumer = sink.consumer

    async def scenario() -> None:
        consumer.feed(10)
        await steps(sink, 3)  # batch 1 is being stored (and will fail)
        consumer.feed(5)
        await steps(sink, 3)  # batch 2 is filling behind it
        assert sink.metrics()["pending_rows"] == 15
        warehouse.gate.set()
        await sink.teardown()
        # storing batch 2 on the way out would commit offset 15 past batch 1's rows
        assert consumer.commits == []
        assert warehouse.attempts == 1  # batch 2 is left for the next start to re-read

    asyncio.run(scenario())
