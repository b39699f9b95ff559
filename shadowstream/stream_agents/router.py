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

import orjson
from confluent_kafka import KafkaException, Message, TopicPartition

from shadowstream.core.errors import SchemaError
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
from shadowstream.schemas.timestamps import EventTimeWindow
from shadowstream.schemas.wire import (
    ANSWERED_HEADER,
    MARKERS_KEY,
    MARKERS_PER_RECORD,
    TARGETS_HEADER,
    Marker,
    encode_markers,
    iter_markers,
)
from shadowstream.stream_agents.changelog import read_changelog
from shadowstream.stream_agents.comparison import ComparisonBuilder
from shadowstream.stream_agents.control import ControlFollower
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.guards import Emitted, GuardedBuilder
from shadowstream.stream_agents.join import JoinEngine
from shadowstream.stream_agents.noise_store import encode_scope, restore_noise
from shadowstream.stream_agents.outbox import Outbox

log = logging.getLogger(__name__)

SOURCE_REQUESTS, SOURCE_BATCH, SOURCE_RESPONSES = 0, 1, 2
TOOL_TRACE_HEADER = "shadow.tool_trace"


NOISE_WRITE_INTERVAL_S = 5.0  # learned noise goes to its topic at most this often


def _header(msg: Message, name: str) -> bytes | None:
    for key, value in msg.headers() or []:  # type: ignore[str-unpack]
        if key == name and isinstance(value, bytes):
            return value
    return None


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
        self._fanout_topics = {
            s.name: (topics.challenger(s.name), topics.challenger_batch(s.name))
            for s in fanout.specs
        }
        # challengers that answer with the champion's recorded tool calls (record-replay):
        # their request goes out once the champion's response, with its tool trace, is in
        self._replay = frozenset(s.name for s in fanout.specs if s.replay_tools)
        self._next_commit = 0.0
        self._next_noise_write = 0.0
        self._next_expire = 0.0
        self._next_control = 0.0
        self._next_stats = time.monotonic() + stats_interval_s
        self.stats_interval_s = stats_interval_s
        self.counters: dict[str, int] = {
            "consumed": 0,
            "fanned_out": 0,
            "comparisons": 0,
            "commits": 0,
            "restored_markers": 0,
            "replayed_tool_traces": 0,
            "restored_noise_scopes": 0,
            "judge_jobs": 0,
        }
        self._current: (
            tuple[bytes, bytes | None, int, Sequence[str] | None, bool, frozenset[str]] | None
        ) = None
        self._judge_jobs: list[dict[str, Any]] = []  # pairs for the LLM judge, this step
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
        self.stats = StatsReporter(self.producer, self.topics.stats, "router")
        self.control = ControlFollower(self.kafka, self.topics.control, self.fanout.experiments)
        if self.builder.noise is not None:  # what was learned before a restart
            self.counters["restored_noise_scopes"] = restore_noise(
                self.kafka, self.topics.noise, self.builder.noise
            )
        if self.builder.judges:
            self.builder.on_judge = lambda job: self._judge_jobs.append(job)

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
        self.outbox.clear()
        self._judge_jobs.clear()
        self._forget(sorted(self.engines))

    def _forget(self, numbers: Sequence[int]) -> None:
        for p in numbers:
            self.engines.pop(p, None)
            for source in (SOURCE_REQUESTS, SOURCE_BATCH, SOURCE_RESPONSES):
                self._consumed.pop((source, p), None)
        self.fanout.set_share(len(self.engines) / max(self.partitions, 1))

    def _new_engine(self, partition: int) -> JoinEngine[Emitted]:
        def dispatch(
            request: dict[str, Any], champion: dict[str, Any], names: tuple[str, ...]
        ) -> None:
            self._dispatch_replay(partition, request, champion, names)

        return JoinEngine(
            window_s=self.window_s,
            late_retention_s=self.late_retention_s,
            build=self._guarded,
            replay=self._replay,
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
                self._emit(engine.expire(), partition)
        self._send_out()
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
        event = self._accept(msg, source)
        if event is None:
            return
        self.outbox.handling = msg
        try:
            if self.redactor is not None:  # [redaction] storage_only rules, before the join
                if source == SOURCE_RESPONSES:
                    self.redactor.response(event, self.redacted)
                else:
                    self.redactor.request(event, self.redacted)
            if source == SOURCE_RESPONSES:
                outputs = engine.add_response(event, SOURCE_RESPONSES, offset)
                if event["role"] == "challenger":
                    self.fanout.record_usage(event["challenger"], event)
            else:
                header = _header(msg, TARGETS_HEADER)
                targets = header.decode().split(",") if header else None
                answered = _header(msg, ANSWERED_HEADER)
                self._current = (
                    msg.value() or b"",
                    msg.key(),
                    partition,
                    targets,
                    source == SOURCE_BATCH,
                    frozenset(answered.decode().split(",")) if answered else frozenset(),
                )
                outputs = engine.add_request(event, self._route, source, offset)
            if outputs:
                self._emit(outputs, partition)
        except Exception as exc:  # one event must never stop the router
            now = time.monotonic()
            if now - self._last_failure_log > 10.0:  # a traceback now and then, not a flood
                self._last_failure_log = now
                log.exception("router: failed on %s[%s]@%s", topic, partition, offset)
            self.deadletters.send(msg, "processing_failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.outbox.handling = None
            self._current = None

    def _accept(self, msg: Message, source: int) -> dict[str, Any] | None:
        """The decoded event, or None once the message has been dead-lettered."""
        value = msg.value()
        if not value:
            self.deadletters.send(msg, "empty", "message has no value")
            return None
        if len(value) > self.max_message_bytes:
            self.deadletters.send(
                msg, "oversized", f"{len(value)} bytes > limit {self.max_message_bytes}"
            )
            return None
        try:
            event = (RESPONSE if source == SOURCE_RESPONSES else REQUEST).decode(value)
        except SchemaError as exc:
            self.deadletters.send(msg, getattr(exc, "reason", "invalid"), str(exc))
            return None
        if not event.get("request_id"):
            self.deadletters.send(msg, "missing_request_id", "request_id is empty")
            return None
        if self.event_time is not None:
            problem = self.event_time.problem(event["timestamp_us"])
            if problem is not None:
                self.deadletters.send(msg, "bad_timestamp", problem)
                return None
        return event

    def _route(self, request: dict[str, Any]) -> list[str]:
        """Called by the join once per new request: choose challengers, forward the bytes."""
        assert self._current is not None
        value, key, partition, targets, batch, answered = self._current
        asked = self.fanout.route(request, targets, answered)
        for name in asked:
            if name in self._replay or name in answered:
                continue  # sent by _dispatch_replay when the champion's answer is in
            live_topic, batch_topic = self._fanout_topics[name]
            self._queue(
                batch_topic if batch else live_topic,
                partition,
                value,
                key or request["request_id"].encode(),
            )
        self.counters["fanned_out"] += len(asked)
        return asked

    def _dispatch_replay(
        self,
        partition: int,
        request: dict[str, Any],
        champion: dict[str, Any],
        names: tuple[str, ...],
    ) -> None:
        trace = champion.get("tool_trace")
        batch = (request.get("experiment_id") or "live") != "live"
        try:
            value = REQUEST.encode(request)
            headers = [(TOOL_TRACE_HEADER, trace.encode())] if trace else None
        except (SchemaError, UnicodeError) as exc:
            self.outbox.fanout_failed(f"record-replay request to {', '.join(names)}: {exc}")
            return
        refused: list[str] = []
        for name in names:
            live_topic, batch_topic = self._fanout_topics[name]
            try:
                self.producer.produce(
                    batch_topic if batch else live_topic,
                    value,
                    request["request_id"],
                    partition=partition,
                    headers=headers,
                )
            except KafkaException as exc:  # refused for good (too large with its trace)
                refused.append(f"{name}: {exc.args[0] if exc.args else exc}")
        if refused:
            self.outbox.fanout_failed("record-replay request not produced: " + "; ".join(refused))
        sent = len(names) - len(refused)
        self.counters["fanned_out"] += sent
        self.counters["replayed_tool_traces"] += sent if trace else 0

    def _emit(self, outputs: list[Emitted], partition: int) -> None:
        self.counters["comparisons"] += self.outbox.comparisons(outputs, partition)
        if self._judge_jobs:  # pairs the builder deferred to the LLM judge agent
            jobs, self._judge_jobs = self._judge_jobs, []
            for job in jobs:
                rid = job["comparison"]["request_id"]
                self._queue(self.topics.judge, partition, orjson.dumps(job), rid)
            self.counters["judge_jobs"] += len(jobs)

    def _queue(self, topic: str, partition: int, value: bytes, key: bytes | str) -> None:
        self.outbox.queue(topic, partition, value, key)

    def _send_out(self) -> None:
        """Hand this step's outputs to the producer: one call per (topic, partition)."""
        self.outbox.send()

    # -- commit ---------------------------------------------------------------------------------
    def _commit_sync(self) -> None:
        """Flush outputs, persist markers, then commit what no open request still holds.

        Each flush waits at most ``flush_timeout_s``: a broker that does not answer
        skips this commit (BrokerUnavailableError), it never stops the loop; what
        was queued stays queued and the next commit waits for it again."""
        if self.consumer.fenced:
            return  # dropped: the next owner replays from the last commit
        self._send_out()
        self.producer.flush_sync(self.flush_timeout_s)
        markers = {p: engine.drain_markers() for p, engine in self.engines.items()}
        changelog = self.topics.router_changelog
        wrote = 0
        for partition, items in markers.items():
            for start in range(0, len(items), MARKERS_PER_RECORD):
                chunk = items[start : start + MARKERS_PER_RECORD]
                self.producer.produce(
                    changelog, encode_markers(chunk), MARKERS_KEY, partition=partition
                )
                wrote += 1
        wrote += self._write_noise()
        if wrote:
            self.producer.flush_sync(self.flush_timeout_s)
        offsets = []
        for (source, partition), next_offset in self._consumed.items():
            engine = self.engines.get(partition)
            if engine is None:
                continue
            position = engine.commit_offset(source, next_offset)
            offsets.append(TopicPartition(self._topic_of[source], partition, position))
        self.consumer.commit_sync(offsets)
        self.counters["commits"] += 1

    def _write_noise(self) -> int:
        """The noise scopes that changed, to their compacted topic (rate limited)."""
        noise = self.builder.noise
        now = time.monotonic()
        if noise is None or now < self._next_noise_write:
            return 0
        self._next_noise_write = now + NOISE_WRITE_INTERVAL_S
        wrote = 0
        for scope in noise.drain_dirty():
            record = encode_scope(noise, scope)
            if record is not None:
                self.producer.produce(self.topics.noise, record[1], record[0], partition=0)
                wrote += 1
        return wrote

    def _report_stats(self) -> None:
        """Fan-out decisions per challenger and join outcomes, as increments (to ClickHouse)."""
        per_challenger: dict[str, dict[str, int]] = {
            name: dict(vars(c)) for name, c in self.fanout.counters.items()
        }
        join: dict[str, int] = {}
        for engine in self.engines.values():
            for key, value in engine.stats.as_dict().items():
                join[key] = join.get(key, 0) + value
        for reason, n in self.deadletters.counter.by_reason.items():
            join[f"deadletter_{reason}"] = n
        per_challenger[""] = join
        self.stats.report(per_challenger)

    # -- introspection -------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """Read from another thread (the web endpoint): work on a snapshot of the engines."""
        engines = dict(self.engines)
        join: dict[str, int] = {}
        for engine in engines.values():
            for key, value in engine.stats.as_dict().items():
                join[key] = join.get(key, 0) + value
        return {
            **self.counters,
            "partitions": sorted(engines),
            "open_requests": sum(e.open_entries for e in engines.values()),
            "markers": sum(e.markers for e in engines.values()),
            "held_events": sum(e.held_events() for e in engines.values()),
            "join": join,
            "comparison": self.builder.metrics(),
            "deadletters": deadletter_counts(self),
            "fanout": {name: vars(c) for name, c in self.fanout.counters.items()},
            "redacted": dict(self.redacted),
        }
