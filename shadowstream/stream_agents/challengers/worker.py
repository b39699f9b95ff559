"""The challenger worker agent: one consumer group per challenger, scale by adding workers.

It consumes ``<prefix>.challenger.<name>`` (live) and
``<prefix>.challenger.<name>.batch`` (batch experiments), calls the model with
a timeout and bounded concurrency, and publishes a ResponseEvent to the
responses topic on the same partition.

* Offsets are committed only up to the oldest request still in flight, after
  the responses before it were delivered (see OffsetTracker), so a crash
  never skips a request.
* A request older than the join window is not sent to the model: its join has
  already closed as ``challenger_missing``; answering would only cost money.
* Requests of a cancelled batch experiment get a ``skipped`` response.
* Batch traffic never takes more than ``batch_share`` of the concurrency, so
  it cannot starve live shadowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from confluent_kafka import Message, TopicPartition

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.core.errors import SchemaError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.producers.redaction import Redactor
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.kafka_io import (
    BatchConsumer,
    DeadLetters,
    OffsetTracker,
    OutputProducer,
    deadletter_counts,
)
from shadowstream.runtime.stats import StatsReporter
from shadowstream.schemas import REQUEST
from shadowstream.schemas.records import Status
from shadowstream.schemas.wire import TOOL_TRACE_HEADER
from shadowstream.stream_agents.challengers import build_adapter
from shadowstream.stream_agents.challengers.base import (
    ChallengeContext,
    ChallengerAdapter,
    ModelAnswer,
)
from shadowstream.stream_agents.challengers.callable_adapter import load_callable
from shadowstream.stream_agents.challengers.invocation import (
    Outcome,
    PendingCall,
    call_batch,
    invoke,
)
from shadowstream.stream_agents.challengers.responses import ResponsePublisher
from shadowstream.stream_agents.challengers.tracing import ChallengerTracer
from shadowstream.stream_agents.comparison_record import parse_output
from shadowstream.stream_agents.control import ControlFollower
from shadowstream.stream_agents.fanout import ExperimentRegistry

log = logging.getLogger(__name__)

COUNTERS = (
    "received",
    "ok",
    "error",
    "timeout",
    "skipped_stale",
    "skipped_cancelled",
    "replayed_tool_traces",  # requests that came with the champion's tool trace
    "commits",
)


class ChallengerWorkerService(AgentService):
    agent_name = "challenger"

    def __init__(
        self,
        *,
        kafka: KafkaClientConfig,
        topics: TopicNames,
        spec: ChallengerSpec,
        window_s: float,
        adapter: ChallengerAdapter | None = None,
        commit_interval_s: float = 1.0,
        stats_interval_s: float = 10.0,
        batch_share: float = 0.5,
        sync_batch: int = 64,
        poll_timeout_s: float = 0.05,
        max_message_bytes: int = 1_000_000,
        otel_spans: bool = False,
        redactor: Redactor | None = None,
        storage_redactor: Redactor | None = None,
        flush_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # answers are redacted like the champion's, then produced
        self.responses = ResponsePublisher(spec, topics.responses, redactor, storage_redactor)
        self.redacted = self.responses.redacted
        self.kafka = kafka
        self.topics = topics
        self.spec = spec
        self.tracer = ChallengerTracer(spec.name, otel_spans)
        self.flush_timeout_s = flush_timeout_s
        self.agent_name = f"challenger:{spec.name}"
        self.window_s = window_s
        self._adapter = adapter
        if adapter is None and spec.callable is not None:
            load_callable(spec.callable)  # a challenger that does not import fails now, once
        self.commit_interval_s = commit_interval_s
        self.batch_limit = max(1, int(spec.concurrency * batch_share))
        self.poll_timeout_s = poll_timeout_s
        self.max_message_bytes = max_message_bytes
        self.live_topic = topics.challenger(spec.name)
        self.batch_topic = topics.challenger_batch(spec.name)
        self.tracker = OffsetTracker()
        self.registry = ExperimentRegistry()
        self._calls: set[asyncio.Future[None]] = set()
        self._batch_in_flight = 0
        self._in_flight = 0
        self.sync_batch = sync_batch
        self._sync_latency_ms = 10.0  # moving average of model time; starts unbatched
        self._batch_paused = False
        self._slot_freed = asyncio.Event()
        self._next_commit = 0.0
        self._next_control = 0.0
        self._next_stats = time.monotonic() + stats_interval_s
        self.stats_interval_s = stats_interval_s
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.latency_ms_total = 0.0

    # -- lifecycle ------------------------------------------------------------------
    async def setup(self) -> None:
        # subscribe first: the group join runs while the rest is set up
        self.consumer = BatchConsumer(
            self.kafka.consumer(
                self.topics.challenger_group(self.spec.name),
                **{"max.poll.interval.ms": max(300_000, int(self.spec.timeout_seconds * 4000))},
            ),
            [self.live_topic, self.batch_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
            name=f"challenger-{self.spec.name}",
            admin_conf=self.kafka.base(),
        )
        self.mark("subscribed")
        self.adapter = self._adapter or build_adapter(self.spec)
        # a span per call: no batching of sync calls on one thread handoff then
        self._thread_batches = (
            bool(getattr(self.adapter, "runs_in_threads", False))
            and hasattr(self.adapter, "call_batch")
            and not self.tracer.enabled
        )
        self.producer = OutputProducer(self.kafka.producer(), f"challenger-{self.spec.name}")
        self.producer.on_wait = self.beat
        self.responses.start(self.producer)
        self.deadletters = DeadLetters(
            self.producer, self.topics.deadletter, f"challenger:{self.spec.name}"
        )
        self.control = ControlFollower(self.kafka, self.topics.control, self.registry)
        self.stats = StatsReporter(self.producer, self.topics.stats, "challenger")

    async def teardown(self) -> None:
        if self._calls:
            # give calls in flight a moment; the rest are abandoned uncommitted and
            # re-delivered to whoever owns the partition next
            _, pending = await asyncio.wait(
                self._calls, timeout=min(self.spec.timeout_seconds, 5.0)
            )
            for task in pending:
                task.cancel()
        self.stats.report({self.spec.name: self.counters})
        try:
            snapshot = self.tracker.committable()
            await self.producer.flush(timeout=self.flush_timeout_s)
            await self.consumer.commit(snapshot)
        except Exception as exc:
            log.warning("%s: final commit failed (%s)", self.agent_name, exc)
        await self.consumer.close()
        self.control.close()
        self.producer.close()
        await self.adapter.close()

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        log.info(
            "%s: assigned %s", self.agent_name, [(tp.topic, tp.partition) for tp in partitions]
        )
        self._batch_paused = False
        self.mark_ready()

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Work in flight for these partitions may still finish and be produced;
        # commit only what is already complete and delivered.
        try:
            revoked = {(p.topic, p.partition) for p in partitions}
            snapshot = [
                tp for tp in self.tracker.committable() if (tp.topic, tp.partition) in revoked
            ]
            self.producer.flush_sync(timeout=self.flush_timeout_s)
            self.consumer.commit_sync(snapshot)
        except Exception as exc:
            log.warning("%s: commit on revoke failed (%s)", self.agent_name, exc)
        self._on_lost(partitions)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        """No longer ours (nothing is committed): calls in flight still answer, but their
        offsets are the next owner's to commit."""
        for tp in partitions:
            self.tracker.forget(tp.topic, tp.partition)

    def on_topics_recreated(self) -> None:
        control = getattr(self, "control", None)  # None before setup()
        if control is not None:
            control.restart()

    def drop_uncommitted(self) -> None:
        self.tracker.forget_all()

    # -- main loop ---------------------------------------------------------------------
    async def step(self) -> None:
        # at most `concurrency` calls are in flight; the rest waits in Kafka
        room = self.spec.concurrency - self._in_flight
        self._apply_batch_priority()
        if room > 0:
            messages = await self.consumer.poll(min(room, 1000), self.poll_timeout_s)
            calls = [call for msg in messages if (call := self._prepare(msg)) is not None]
            if calls:
                self._dispatch(calls)
        else:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), timeout=self.poll_timeout_s)
            # keep the group membership alive while saturated
            await self.consumer.poll(0, 0)
        now = time.monotonic()
        if now >= self._next_control:
            self._next_control = now + 1.0
            await self.consumer.run(self.control.poll_sync, 0.0)
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval_s
            self.stats.report({self.spec.name: self.counters})
        if now >= self._next_commit:
            self._next_commit = now + self.commit_interval_s
            snapshot = self.tracker.committable()
            await self.producer.flush(timeout=self.flush_timeout_s)
            await self.consumer.commit(snapshot)
            self.counters["commits"] += 1
        self.producer.poll()

    def _apply_batch_priority(self) -> None:
        batch_partitions = [
            TopicPartition(t, p) for t, p in self.consumer.assignment if t == self.batch_topic
        ]
        if not batch_partitions:
            return
        if self._batch_in_flight >= self.batch_limit and not self._batch_paused:
            self.consumer.pause(batch_partitions)
            self._batch_paused = True
        elif self._batch_in_flight < self.batch_limit and self._batch_paused:
            self.consumer.resume(batch_partitions)
            self._batch_paused = False

    def _prepare(self, msg: Message) -> PendingCall | None:
        """Validate one request message; None when it needs no model call."""
        topic = msg.topic() or ""
        partition = msg.partition() or 0
        offset = msg.offset() or 0
        self.counters["received"] += 1
        value = msg.value()
        if not value or len(value) > self.max_message_bytes:
            self.deadletters.send(msg, "oversized" if value else "empty", "")
            self.tracker.skip(topic, partition, offset)
            return None
        try:
            request = REQUEST.decode(value)
        except SchemaError as exc:
            self.deadletters.send(msg, getattr(exc, "reason", "invalid"), str(exc))
            self.tracker.skip(topic, partition, offset)
            return None
        if not request["request_id"]:
            self.deadletters.send(msg, "missing_request_id", "")
            self.tracker.skip(topic, partition, offset)
            return None
        experiment = request["experiment_id"]
        if experiment != "live" and experiment in self.registry.cancelled:
            self.counters["skipped_cancelled"] += 1
            self.responses.publish(request, partition, None, 0.0, "skipped", "experiment cancelled")
            self.tracker.skip(topic, partition, offset)
            return None
        _, sent_ms = msg.timestamp()
        if sent_ms > 0 and time.time() * 1000 - sent_ms > self.window_s * 1000:
            # its join window has closed: an answer could only be "late"
            self.counters["skipped_stale"] += 1
            self.tracker.skip(topic, partition, offset)
            return None
        trace: Any = None
        for key, header_value in msg.headers() or []:  # type: ignore[str-unpack]
            if key == TOOL_TRACE_HEADER and isinstance(header_value, bytes):
                trace = parse_output(header_value.decode())
                self.counters["replayed_tool_traces"] += 1
        epoch = self.tracker.start(topic, partition, offset)
        is_batch = topic == self.batch_topic
        if is_batch:
            self._batch_in_flight += 1
        self._in_flight += 1
        context = ChallengeContext(
            request_id=request["request_id"],
            endpoint=request["endpoint"],
            attributes=request["attributes"],
            experiment_id=experiment,
            tool_trace=trace,
            traceparent=request.get("traceparent"),
        )
        return PendingCall(request, topic, partition, offset, is_batch, context, epoch)

    def _dispatch(self, calls: list[PendingCall]) -> None:
        """One task per call for async models; small batches per thread for sync ones."""
        if self._thread_batches:
            # Batch only what is cheap: a batch should take ~2 ms of model time, so a
            # slow model keeps one call per thread (full parallelism) while a fast one
            # amortises the thread handoff over many calls.
            size = int(2.0 / max(self._sync_latency_ms, 0.01))
            size = max(1, min(self.sync_batch, size))
            groups = [calls[i : i + size] for i in range(0, len(calls), size)]
            for group in groups:
                self._track(asyncio.ensure_future(self._call_batch(group)))
        else:
            for call in calls:
                self._track(asyncio.ensure_future(self._call(call)))

    def _track(self, task: asyncio.Future[None]) -> None:
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    def _done(self, call: PendingCall) -> None:
        self.tracker.finish(call.topic, call.partition, call.offset, call.epoch)
        self._in_flight -= 1
        if call.is_batch:
            self._batch_in_flight -= 1
        self._slot_freed.set()

    async def _call(self, call: PendingCall) -> None:
        try:
            payload = parse_output(call.request["payload"])
            with self.tracer.span(call.context) as span:
                answer, status, error, latency_ms = await self._invoke(payload, call.context)
                self.tracer.finish(span, status, error)
            self._record(call, answer, status, error, latency_ms)
        except Exception as exc:  # never lose the offset: publish an error response
            log.exception("%s: unexpected failure", self.agent_name)
            self.responses.publish(
                call.request, call.partition, None, 0.0, "error", f"worker: {exc}"
            )
        finally:
            self._done(call)

    async def _call_batch(self, calls: list[PendingCall]) -> None:
        """Sync model: the calls of a small batch run back to back on one pool thread."""
        items = [(parse_output(c.request["payload"]), c.context) for c in calls]
        try:
            outcomes = await call_batch(self.adapter, items, self.spec.timeout_seconds)
            for call, (answer, status, error, latency_ms) in zip(calls, outcomes, strict=True):
                self._record(call, answer, status, error, latency_ms)
        except Exception as exc:
            for call in calls:
                self._record(call, None, "error", f"{type(exc).__name__}: {exc}"[:2000], 0.0)
        finally:
            for call in calls:
                self._done(call)

    async def _invoke(self, payload: Any, context: ChallengeContext) -> Outcome:
        """The model's answer within the challenger's timeout, over its retries."""
        return await invoke(
            self.adapter, payload, context, self.spec.timeout_seconds, self.spec.retries
        )

    def _record(
        self,
        call: PendingCall,
        answer: ModelAnswer | None,
        status: Status,
        error: str | None,
        latency_ms: float,
    ) -> None:
        self.counters[status] += 1
        self.latency_ms_total += latency_ms
        self._sync_latency_ms += (latency_ms - self._sync_latency_ms) * 0.05
        self.responses.publish(call.request, call.partition, answer, latency_ms, status, error)

    def metrics(self) -> dict[str, Any]:
        answered = self.counters["ok"] + self.counters["error"] + self.counters["timeout"]
        return {
            **self.counters,
            "in_flight": self._in_flight,
            "mean_latency_ms": round(self.latency_ms_total / answered, 3) if answered else None,
            "deadletters": deadletter_counts(self),
            "redacted": dict(self.redacted),
        }
