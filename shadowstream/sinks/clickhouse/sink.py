"""The ClickHouse sink agent: Kafka -> ClickHouse in batches, offsets after the ack.

* Consumes comparisons (and, with ``raw_events``, requests and responses).
* Events are inserted as they travel (Avro bodies in a container block,
  parsed by ClickHouse), so the sink does almost no per-event Python work;
  each body is only checked, in C, against the rules the router's decoder
  applies (the C codec's ``check``: nothing is built).
* A batch is inserted when it reaches ``batch_rows`` or ``batch_seconds``;
  offsets are committed only after ClickHouse acknowledged every insert of it.
  The next batch fills while one is being stored (one store at a time, in
  order), so consumption never stops for an insert.
* ClickHouse unavailable: consumption pauses (memory stays bounded at two
  batches), the batch is retried with exponential backoff, nothing is committed.
  The same for an error about the server or the tables rather than the rows.
* ClickHouse refuses rows of a batch (values it cannot take, even when our
  codec accepts them): the batch is split until those rows are found
  (:mod:`~shadowstream.sinks.clickhouse.isolation`); they are dead-lettered with
  ClickHouse's message, the rest is stored and the offsets are committed.
* Messages that are not events of the expected type go to the dead-letter
  topic, as do raw events whose timestamp ClickHouse cannot keep. Events of
  another schema version - older, or newer and found on the schema topic - are
  resolved and re-encoded with this version's schema before they are framed:
  bodies are only ever handed to ClickHouse under the schema they were written
  with, so an unknown writer schema is never inserted; an event whose schema
  cannot be found or resolved is dead-lettered (``unknown_schema`` /
  ``incompatible_schema``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message, TopicPartition

from shadowstream.core.errors import (
    BrokerError,
    SchemaError,
    WarehouseError,
)
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.secrets import redact_text
from shadowstream.core.topics import TopicNames
from shadowstream.producers.redaction import Redactor
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.kafka_io import (
    BatchConsumer,
    DeadLetters,
    OutputProducer,
    deadletter_counts,
)
from shadowstream.schemas.timestamps import EventTimeWindow, peek_second_long
from shadowstream.sinks.clickhouse.inserts import BatchInserter
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.sinks.clickhouse.sink_batch import (
    RAW_KINDS,
    SinkBatch,
    insert_histogram,
    sink_counters,
    sink_kinds,
)
from shadowstream.warehouse.client import Warehouse

log = logging.getLogger(__name__)

HEADER = 10


class ClickHouseSinkService(AgentService):
    agent_name = "sink"

    def __init__(
        self,
        *,
        kafka: KafkaClientConfig,
        topics: TopicNames,
        warehouse_factory: Callable[[], Warehouse],
        batch_rows: int = 20_000,
        batch_seconds: float = 1.0,
        raw_events: bool = True,
        max_message_bytes: int = 1_000_000,
        retention_days: int = 90,
        auto_migrate: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        event_time: EventTimeWindow | None = None,
        redactor: Redactor | None = None,
        flush_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # "storage_only" redaction rules: raw requests and responses are decoded,
        # redacted and re-encoded before they are stored (comparisons come redacted)
        self.redactor = redactor
        self.redacted: dict[str, int] = {}
        self.kafka = kafka
        self.event_time = event_time  # None: raw events' timestamps are not checked
        self.flush_timeout_s = flush_timeout_s
        self.topics = topics
        self.warehouse_factory = warehouse_factory
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_message_bytes = max_message_bytes
        self.retention_days = retention_days
        self.auto_migrate = auto_migrate
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.kinds = sink_kinds(topics, raw_events)
        self._by_name = {k.name: k for k in self.kinds.values()}
        self._batch = SinkBatch()  # being filled
        self._store: asyncio.Future[None] | None = None  # storing the previous batch
        self._storing: tuple[SinkBatch, int] | None = None  # that batch, its generation
        self._failed: SinkBatch | None = None  # a batch waiting for ClickHouse to come back
        self._generation = 0  # bumped by each revocation
        self._warehouse: Warehouse | None = None
        self._commit_error: BrokerError | None = None  # raised by the next step
        self._paused = False
        self._retry_at = 0.0
        self._backoff = backoff_initial_s
        self.counters = sink_counters()
        self.last_error: str | None = None
        self.insert_seconds = insert_histogram()  # per INSERT by table, for /metrics
        self.inserter = BatchInserter(
            lambda: self.warehouse, self._by_name, self.counters, self.insert_seconds
        )

    # -- lifecycle -------------------------------------------------------------------
    async def setup(self) -> None:
        # subscribe first: the group join runs while ClickHouse is opened and migrated
        # (nothing is consumed before the first step, after the migrations)
        self.consumer = BatchConsumer(
            self.kafka.consumer(self.topics.sink_group),
            list(self.kinds),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
            name="sink",
            admin_conf=self.kafka.base(),
        )
        self.mark("subscribed")
        limit = self.max_message_bytes
        self.producer = OutputProducer(self.kafka.producer(), "sink", max_message_bytes=limit)
        self.producer.on_wait = self.beat
        self.deadletters = DeadLetters(self.producer, self.topics.deadletter, "sink", limit)
        if self.auto_migrate:
            await asyncio.get_running_loop().run_in_executor(None, self._migrate)

    def _migrate(self) -> None:
        warehouse = self.warehouse
        self.mark("warehouse_opened")
        applied = migrate(warehouse, self.retention_days)
        self.mark("migrated")
        if applied:
            log.info("sink: applied migrations %s", [f"{m.version}_{m.name}" for m in applied])

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = self.warehouse_factory()
        return self._warehouse

    async def teardown(self) -> None:
        stored = True
        if self._store is not None:
            try:
                await self._store
            except Exception as exc:
                stored = False  # the next batch must not commit past it
                log.warning("sink: batch being stored not finished (%s); it will be re-read", exc)
            self._store = None
        if stored and self._batch.rows and not self._paused and self._failed is None:
            try:
                await self._store_batch(self._batch, self._generation)
            except Exception as exc:
                log.warning("sink: final batch not stored (%s); it will be re-read", exc)
        await self.consumer.close()
        self.producer.close()

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self.mark_ready()

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Runs on the consumer's thread, inside poll(), before any message of the
        # new assignment is returned (also when the partitions were lost). Uncommitted
        # work is simply re-read by the next owner (inserts are idempotent); a batch
        # being stored right now finishes its insert but does not commit (its
        # generation is over).
        self._generation += 1
        self._batch = SinkBatch()
        self._failed = None
        self._paused = False

    def drop_uncommitted(self) -> None:
        self._on_revoke([])

    def not_ready_reasons(self) -> list[str]:
        if self._paused:
            return [f"cannot store in ClickHouse, consumption paused ({self.last_error})"]
        return []

    # -- main loop ----------------------------------------------------------------------
    async def step(self) -> None:
        """Fill the next batch while the previous one is being stored.

        At most one batch is being stored at a time and offsets are committed in
        batch order, only after every insert of their batch; memory is bounded by
        two batches.
        """
        store = self._store
        if store is not None and store.done():
            self._store = None
            self._stored(store)
        error, self._commit_error = self._commit_error, None
        if error is not None:
            raise error  # the agent loop waits for the broker, or rejoins if fenced
        if self._paused:
            # keep the group membership alive while ClickHouse is away
            await self.consumer.poll(100, 0.1)
            failed = self._failed
            if self._store is None and failed is not None and time.monotonic() >= self._retry_at:
                self._start_store(failed)
            return
        room = self.batch_rows - self._batch.rows
        if room > 0:
            messages = await self.consumer.poll(min(room, 10_000), 0.1)
            for msg in messages:
                self._handle(msg)
        elif self._store is not None:
            # full while the previous batch is still being stored: wait for it
            await asyncio.wait({self._store}, timeout=0.1)
        batch = self._batch
        if self._store is None and (
            batch.rows >= self.batch_rows
            or (batch.offsets and time.monotonic() - batch.started >= self.batch_seconds)
        ):
            self._batch = SinkBatch()
            self._start_store(batch)
        self.producer.poll()

    def _handle(self, msg: Message) -> None:
        topic = msg.topic() or ""
        kind = self.kinds.get(topic)
        key = (topic, msg.partition() or 0)
        if not self._batch.offsets:
            self._batch.started = time.monotonic()
        self._batch.offsets[key] = (msg.offset() or 0) + 1
        if kind is None:
            return
        value = msg.value()
        if not value:
            self.deadletters.send(msg, "empty", "message has no value")
            return
        if len(value) > self.max_message_bytes:
            self.deadletters.send(msg, "oversized", f"{len(value)} bytes")
            return
        codec = kind.codec
        redact = self.redactor is not None and kind.name in RAW_KINDS
        if not redact and value[2:HEADER] == codec.fingerprint and value[:2] == b"\xc3\x01":
            # Fast path: today's schema. request_id is the first field of every
            # request/response/comparison; an empty Avro string is the byte 0x00.
            if kind.keyed and len(value) > HEADER and value[HEADER] == 0:
                self.deadletters.send(msg, "missing_request_id", "request_id is empty")
                return
            # Refuse what the router's strict decoder refuses (ClickHouse's Avro reader
            # takes overlong varints and bits past 64): walked in C, nothing is built.
            try:
                codec.validate(value)
            except SchemaError as exc:
                self.deadletters.send(msg, getattr(exc, "reason", "invalid"), str(exc))
                return
            if kind.timestamped and self._bad_timestamp(msg, peek_second_long(value[HEADER:])):
                return
            self._batch.add(kind.name, value[HEADER:], msg)
            return
        try:  # another writer version (looked up if unknown): resolve, store in this shape
            record = codec.decode(value)
        except SchemaError as exc:
            self.deadletters.send(msg, getattr(exc, "reason", "invalid"), str(exc))
            return
        if kind.keyed and not record.get("request_id"):
            self.deadletters.send(msg, "missing_request_id", "request_id is empty")
            return
        if kind.timestamped and self._bad_timestamp(msg, record.get("timestamp_us")):
            return
        if redact:
            assert self.redactor is not None
            if kind.name == "responses":
                self.redactor.response(record, self.redacted)
            else:
                self.redactor.request(record, self.redacted)
        self._batch.add(kind.name, codec.encode(record)[HEADER:], msg)
        self.counters["reencoded"] += 1

    def _bad_timestamp(self, msg: Message, timestamp_us: int | None) -> bool:
        """Dead-letter a raw event whose timestamp ClickHouse cannot keep (True if so)."""
        if self.event_time is None or timestamp_us is None:
            return False
        problem = self.event_time.problem(timestamp_us)
        if problem is None:
            return False
        self.deadletters.send(msg, "bad_timestamp", problem)
        return True

    def _start_store(self, batch: SinkBatch) -> None:
        self._store = asyncio.ensure_future(self._store_batch(batch, self._generation))
        self._storing = (batch, self._generation)

    def _stored(self, store: asyncio.Future[None]) -> None:
        """Act on a finished store: resume after an outage, or keep the batch and back off."""
        storing, self._storing = self._storing, None
        exc = store.exception()
        if storing is None or storing[1] != self._generation:
            return  # its partitions were revoked meanwhile: the next owner re-reads it
        batch = storing[0]
        if exc is None:
            self._failed = None
            self._backoff = self.backoff_initial_s
            if self._paused:
                self.consumer.resume(self.consumer.assigned_partitions())
                self._paused = False
                self.last_error = None
                log.info("sink: ClickHouse is back; resumed")
            return
        if isinstance(exc, WarehouseError):
            # unreachable, or an error about the server or the tables: an outage (the
            # rows ClickHouse refuses for themselves were set aside while storing)
            self._back_off(batch, exc)
        else:
            raise exc

    def _back_off(self, batch: SinkBatch, exc: Exception) -> None:
        """Pause consumption and schedule a retry of the same batch (nothing is committed)."""
        self._failed = batch
        self.counters["insert_failures"] += 1
        self.last_error = redact_text(str(exc))  # shown in /metrics
        delay = min(self._backoff, self.backoff_max_s) * random.uniform(0.8, 1.2)
        self._retry_at = time.monotonic() + delay
        self._backoff = min(self._backoff * 2, self.backoff_max_s)
        if not self._paused:
            self.consumer.pause(self.consumer.assigned_partitions())
            self._paused = True
        log.warning("sink: insert failed, retrying in %.1fs: %s", delay, self.last_error)

    async def _store_batch(self, batch: SinkBatch, generation: int) -> None:
        """Insert the batch, then commit its offsets unless a rebalance came in between."""
        if batch.rows:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.inserter.insert, batch)
            finally:
                self._dead_letter_rejected(batch, generation)
            self.counters["batches"] += 1
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()]
        started = time.monotonic()
        try:
            await self.producer.flush(self.flush_timeout_s)  # dead letters of this batch are safe
            await self.consumer.run(self._commit_if_current, offsets, generation)
        except BrokerError as exc:
            # the rows are stored (inserts are idempotent); only the commit did not go
            # through, and a later batch's commit covers them
            self._commit_error = exc
        self.counters["commit_ms"] += round((time.monotonic() - started) * 1000)

    def _commit_if_current(self, offsets: list[TopicPartition], generation: int) -> None:
        # On the consumer's thread, like the revoke callback: no race with a rebalance
        if generation == self._generation:
            self.consumer.commit_sync(offsets)

    def _dead_letter_rejected(self, batch: SinkBatch, generation: int) -> None:
        """On the loop: dead-letter the rows set aside while storing (unless the partitions
        were revoked meanwhile: the next owner reads them again, and decides)."""
        rejected, batch.rejected = batch.rejected, []
        if generation != self._generation:
            return
        for source, reason, detail in rejected:
            self.deadletters.send(source, reason, detail)
        self.counters["rejected_rows"] += len(rejected)

    def metrics(self) -> dict[str, Any]:
        return {
            **self.counters,
            "pending_rows": self._batch.rows + (self._storing[0].rows if self._storing else 0),
            "paused": self._paused,
            "last_error": self.last_error,
            "deadletters": deadletter_counts(self),
            "redacted": dict(self.redacted),
        }
