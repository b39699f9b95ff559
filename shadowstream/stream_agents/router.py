"""The router agent: fan-out and join, co-located on one partition number.

It consumes ``requests``, ``batch.requests`` and ``responses`` (same partition
count, range assignment, so partition *p* of all three lands on the same
instance). For each new request it forwards the original bytes to every
chosen challenger's topic, on the same partition, and records the choice in
the join; champion and challenger responses complete the join.

Commit protocol (at-least-once, exact after a restart):

1. flush the producer: fan-out messages and comparisons are on the broker;
2. write the markers of requests closed since the last commit to the
   changelog, flush again;
3. commit, per input partition, the offset of the oldest event an open
   request still holds (or everything consumed, if none is held).

After a crash the new owner restores the markers from the changelog and
replays from the committed offsets: open requests are rebuilt, closed ones are
recognised as duplicates (or late), so nothing is lost and nothing is joined
twice; at most a comparison is re-emitted (ClickHouse keeps one).

One event never stops the router: a message it cannot decode, whose timestamp
the warehouse cannot keep, or whose comparisons or fan-out cannot be built,
encoded or produced is dead-lettered with its reason and original bytes, and
the rest of the batch flows on (see :mod:`shadowstream.stream_agents.guards`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Message, TopicPartition

from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.producers.redaction import Redactor
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.clock import RunningClock
from shadowstream.runtime.kafka_io import (
    BatchConsumer,
    DeadLetters,
    OutputProducer,
    deadletter_counts,
)
from shadowstream.runtime.stats import StatsReporter
from shadowstream.schemas import REQUEST, RESPONSE
from shadowstream.schemas.records import RequestEvent, ResponseEvent
from shadowstream.schemas.timestamps import EventTimeWindow
from shadowstream.schemas.wire import (
    ANSWERED_HEADER,
    TARGETS_HEADER,
    Marker,
    iter_markers,
)
from shadowstream.stream_agents.changelog import read_changelog
from shadowstream.stream_agents.comparison import ComparisonBuilder
from shadowstream.stream_agents.control import ControlFollower
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.guards import Emitted, GuardedBuilder
from shadowstream.stream_agents.join import JoinEngine
from shadowstream.stream_agents.noise_store import restore_noise
from shadowstream.stream_agents.outbox import Outbox
from shadowstream.stream_agents.router_commit import committable_offsets, write_markers, write_noise
from shadowstream.stream_agents.router_intake import accept_event, header
from shadowstream.stream_agents.router_outputs import RouterOutputs
from shadowstream.stream_agents.router_stats import engine_gauges, stats_increments

log = logging.getLogger(__name__)

SOURCE_REQUESTS, SOURCE_BATCH, SOURCE_RESPONSES = 0, 1, 2
NOISE_WRITE_INTERVAL_S = 5.0  # learned noise goes to its topic at most this often
COUNTERS = (
    "consumed",
    "fanned_out",
    "comparisons",
    "commits",
    "restored_markers",
    "replayed_tool_traces",
    "restored_noise_scopes",
    "judge_jobs",
)


class RouterService(AgentService):
    agent_name = "router"

    def __init__(
        self,
        *,
        kafka: KafkaClientConfig,
        topics: TopicNames,
        partitions: int,
        fanout: FanOut,
        builder: ComparisonBuilder,
        window_s: float,
        late_retention_s: float,
        commit_interval_s: float = 1.0,
        stats_interval_s: float = 10.0,
        max_message_bytes: int = 1_000_000,
        batch_size: int = 5_000,
        poll_timeout_s: float = 0.05,
        expire_interval_s: float = 0.2,
        event_time: EventTimeWindow | None = None,
        redactor: Redactor | None = None,
        flush_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # "storage_only" redaction rules: challengers got the raw bytes (fan-out forwards
        # them); everything compared and emitted from here on is redacted
        self.redactor = redactor
        self.redacted: dict[str, int] = {}
        self.kafka = kafka
        self.flush_timeout_s = flush_timeout_s
        self.topics = topics
        self.partitions = partitions
        self.fanout = fanout
        self.builder = builder
        # a batch run's comparisons wait for the noise model only if it asked a control
        builder.experiment_challengers = fanout.experiments.challengers.get
        self.window_s = window_s
        self.late_retention_s = late_retention_s
        self.commit_interval_s = commit_interval_s
        self.max_message_bytes = max_message_bytes
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.expire_interval_s = expire_interval_s
        self.event_time = event_time  # None: timestamps are not checked
        # build + encode, never raising into the join (a failure is dead-lettered)
        self._guarded = GuardedBuilder(builder, max_message_bytes)
        self.engines: dict[int, JoinEngine[Emitted]] = {}
        # join windows run on it: time the router was not running is left out
        self.clock = RunningClock(max_gap_s=max(1.0, window_s / 10))
        self._consumed: dict[tuple[int, int], int] = {}  # (source, partition) -> next offset
        self._source_of = {
            topics.requests: SOURCE_REQUESTS,
            topics.batch_requests: SOURCE_BATCH,
            topics.responses: SOURCE_RESPONSES,
        }
        self._topic_of = {v: k for k, v in self._source_of.items()}
        self._next_commit = 0.0
        self._next_noise_write = 0.0
        self._next_expire = 0.0
        self._next_control = 0.0
        self._next_stats = time.monotonic() + stats_interval_s
        self.stats_interval_s = stats_interval_s
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        # fan-out, comparisons and judge jobs: what the router sends
        self.outputs = RouterOutputs(fanout, topics, self.counters)
        self._last_failure_log = 0.0

    # -- lifecycle ------------------------------------------------------------------
    async def setup(self) -> None:
        # subscribe first: the group join runs while the rest is set up
        self.consumer = BatchConsumer(
            self.kafka.consumer(self.topics.router_group),
            [self.topics.requests, self.topics.batch_requests, self.topics.responses],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
            name="router",
            admin_conf=self.kafka.base(),
        )
        self.mark("subscribed")
        limit = self.max_message_bytes
        self.producer = OutputProducer(self.kafka.producer(), "router", max_message_bytes=limit)
        self.producer.on_wait = self.beat
        self.deadletters = DeadLetters(self.producer, self.topics.deadletter, "router", limit)
        # this step's fan-out and comparison messages (one produce_batch per partition)
        self.outbox = Outbox(self.producer, self.deadletters, self.topics)
        self.outputs.start(self.producer, self.outbox)
        self.stats = StatsReporter(self.producer, self.topics.stats, "router")
        self.control = ControlFollower(self.kafka, self.topics.control, self.fanout.experiments)
        if self.builder.noise is not None:  # what was learned before a restart
            self.counters["restored_noise_scopes"] = restore_noise(
                self.kafka, self.topics.noise, self.builder.noise
            )
        if self.builder.judges:
            outputs = self.outputs
            self.builder.on_judge = lambda job: outputs.judge_jobs.append(job)

    async def teardown(self) -> None:
        self._report_stats()
        self._next_noise_write = 0.0  # the last of what was learned goes out now
        try:
            await self.consumer.run(self._commit_sync)
        except Exception as exc:
            log.warning("router: final commit failed (%s); the next owner replays", exc)
        await self.consumer.close()
        self.control.close()
        self.producer.close()

    # -- rebalance (called on the consumer thread, inside poll) --------------------------
    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        numbers = sorted({tp.partition for tp in partitions})
        new = [p for p in numbers if p not in self.engines]
        restored = self._restore(new) if new else {}
        kept = 0
        for p in new:
            engine = self._new_engine(p)
            kept += engine.restore_markers(restored.get(p, []))
            self.engines[p] = engine
        self.counters["restored_markers"] += kept
        self.fanout.set_share(len(self.engines) / max(self.partitions, 1))
        log.info("router: assigned partitions %s (%s markers restored)", numbers, kept)
        self.mark_ready()

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        numbers = sorted({tp.partition for tp in partitions})
        try:
            self._commit_sync()
        except Exception as exc:
            log.warning("router: commit on revoke failed (%s); the next owner replays", exc)
        self._forget(numbers)
        log.info("router: revoked partitions %s", numbers)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        """No longer ours: another member may own them already, so nothing is committed."""
        self._forget(sorted({tp.partition for tp in partitions}))

    def on_topics_recreated(self) -> None:
        control = getattr(self, "control", None)  # None before setup()
        if control is not None:
            control.restart()

    def drop_uncommitted(self) -> None:
        """Fenced: every open request and position since the last commit is the next
        owner's to replay (closed requests are in the changelog already)."""
        self.outputs.clear()
        self._forget(sorted(self.engines))

    def _forget(self, numbers: Sequence[int]) -> None:
        for p in numbers:
            self.engines.pop(p, None)
            for source in (SOURCE_REQUESTS, SOURCE_BATCH, SOURCE_RESPONSES):
                self._consumed.pop((source, p), None)
        self.fanout.set_share(len(self.engines) / max(self.partitions, 1))

    def _new_engine(self, partition: int) -> JoinEngine[Emitted]:
        def dispatch(
            request: RequestEvent, champion: ResponseEvent, names: tuple[str, ...]
        ) -> None:
            self.outputs.dispatch_replay(partition, request, champion, names)

        return JoinEngine(
            window_s=self.window_s,
            late_retention_s=self.late_retention_s,
            build=self._guarded,
            replay=self.outputs.replay,
            dispatch=dispatch,
            clock=self.clock,
        )

    def _restore(self, numbers: Sequence[int]) -> dict[int, list[tuple[str, Marker]]]:
        """Read the changelog of these partitions back, from ``late_retention`` ago."""
        return read_changelog(
            self.kafka.consumer(f"{self.topics.router_group}.restore.{uuid.uuid4().hex[:8]}"),
            self.topics.router_changelog,
            numbers,
            since=time.time() - self.late_retention_s - self.window_s - 60,
            decode=iter_markers,
            progress=self.beat,
        )

    # -- main loop ---------------------------------------------------------------------------
    async def step(self) -> None:
        messages = await self.consumer.poll(self.batch_size, self.poll_timeout_s)
        self.clock.tick()  # before anything is timed: a freeze is not a slow challenger
        for msg in messages:
            self._handle(msg)
        self.counters["consumed"] += len(messages)
        now = time.monotonic()
        if now >= self._next_expire:
            self.clock.tick()
            self._next_expire = now + self.expire_interval_s
            for partition, engine in list(self.engines.items()):
                self.outputs.emit(engine.expire(), partition)
        self.outbox.send()
        if now >= self._next_control:
            self._next_control = now + 1.0
            await self.consumer.run(self.control.poll_sync, 0.0)
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval_s
            self._report_stats()
        if now >= self._next_commit:
            self._next_commit = now + self.commit_interval_s
            await self.consumer.run(self._commit_sync)
        self.producer.poll()

    def _handle(self, msg: Message) -> None:
        topic = msg.topic()
        source = self._source_of.get(topic or "")
        if source is None:
            return
        partition = msg.partition() or 0
        offset = msg.offset() or 0
        self._consumed[(source, partition)] = offset + 1
        engine = self.engines.get(partition)
        if engine is None:  # a message outside our assignment callbacks (should not happen)
            engine = self.engines[partition] = self._new_engine(partition)
        limit, window = self.max_message_bytes, self.event_time
        request: RequestEvent | None = None
        response: ResponseEvent | None = None
        if source == SOURCE_RESPONSES:
            response = accept_event(msg, RESPONSE, self.deadletters, limit, window)
            if response is None:
                return
        else:
            request = accept_event(msg, REQUEST, self.deadletters, limit, window)
            if request is None:
                return
        self.outbox.handling = msg
        try:
            if response is not None:
                if self.redactor is not None:  # [redaction] storage_only rules, before the join
                    self.redactor.response(response, self.redacted)
                emitted = engine.add_response(response, SOURCE_RESPONSES, offset)
                if response["role"] == "challenger":
                    self.fanout.record_usage(response["challenger"], response)
            else:
                assert request is not None
                if self.redactor is not None:
                    self.redactor.request(request, self.redacted)
                targets_header = header(msg, TARGETS_HEADER)
                targets = targets_header.decode().split(",") if targets_header else None
                answered = header(msg, ANSWERED_HEADER)
                self.outputs.current = (
                    msg.value() or b"",
                    msg.key(),
                    partition,
                    targets,
                    source == SOURCE_BATCH,
                    frozenset(answered.decode().split(",")) if answered else frozenset(),
                )
                emitted = engine.add_request(request, self.outputs.route, source, offset)
            if emitted:
                self.outputs.emit(emitted, partition)
        except Exception as exc:  # one event must never stop the router
            now = time.monotonic()
            if now - self._last_failure_log > 10.0:  # a traceback now and then, not a flood
                self._last_failure_log = now
                log.exception("router: failed on %s[%s]@%s", topic, partition, offset)
            self.deadletters.send(msg, "processing_failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.outbox.handling = None
            self.outputs.current = None

    # -- commit ---------------------------------------------------------------------------------
    def _commit_sync(self) -> None:
        """Flush outputs, persist markers, then commit what no open request still holds.

        Each flush waits at most ``flush_timeout_s``: a broker that does not answer
        skips this commit (BrokerUnavailableError), it never stops the loop; what
        was queued stays queued and the next commit waits for it again."""
        if self.consumer.fenced:
            return  # dropped: the next owner replays from the last commit
        self.outbox.send()  # this step's outputs: one call per (topic, partition)
        self.producer.flush_sync(self.flush_timeout_s)
        wrote = write_markers(self.producer, self.topics.router_changelog, self.engines)
        wrote += self._write_noise()
        if wrote:
            self.producer.flush_sync(self.flush_timeout_s)
        offsets = committable_offsets(self._consumed, self.engines, self._topic_of)
        self.consumer.commit_sync(offsets)
        self.counters["commits"] += 1

    def _write_noise(self) -> int:
        """The noise scopes that changed, to their compacted topic (rate limited)."""
        noise = self.builder.noise
        now = time.monotonic()
        if noise is None or now < self._next_noise_write:
            return 0
        self._next_noise_write = now + NOISE_WRITE_INTERVAL_S
        return write_noise(self.producer, self.topics.noise, noise)

    def _report_stats(self) -> None:
        """Fan-out decisions per challenger and join outcomes, as increments (to ClickHouse)."""
        self.stats.report(stats_increments(self.fanout, self.engines, self.deadletters))

    # -- introspection -------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """Read from another thread (the web endpoint): work on a snapshot of the engines."""
        return {
            **self.counters,
            **engine_gauges(dict(self.engines)),
            "comparison": self.builder.metrics(),
            "deadletters": deadletter_counts(self),
            "fanout": {name: vars(c) for name, c in self.fanout.counters.items()},
            "redacted": dict(self.redacted),
        }
