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
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from confluent_kafka import Message, TopicPartition

from shadowstream.core.errors import SchemaError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.clock import RunningClock
from shadowstream.runtime.kafka_io import (
    BatchConsumer,
    DeadLetters,
    OutputProducer,
    deadletter_counts,
)
from shadowstream.runtime.stats import StatsReporter
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE
from shadowstream.stream_agents.changelog import read_changelog
from shadowstream.stream_agents.comparison import ComparisonBuilder
from shadowstream.stream_agents.control import ControlFollower
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.join import JoinEngine, Marker

log = logging.getLogger(__name__)

SOURCE_REQUESTS, SOURCE_BATCH, SOURCE_RESPONSES = 0, 1, 2
TARGETS_HEADER = "shadow.challengers"
TOOL_TRACE_HEADER = "shadow.tool_trace"


MARKERS_KEY = b"@markers"  # a changelog record holding many markers
MARKERS_PER_RECORD = 2_000


def encode_marker(marker: Marker) -> bytes:
    """One marker as its own changelog record (key = request id)."""
    return orjson.dumps(
        {"t": marker.closed_at, "a": sorted(marker.asked), "r": sorted(marker.received)}
    )


def encode_markers(markers: Sequence[tuple[str, Marker]]) -> bytes:
    """Many markers in one changelog record (key = MARKERS_KEY): one produce per commit
    and partition instead of one per request."""
    return orjson.dumps(
        [[rid, m.closed_at, sorted(m.asked), sorted(m.received)] for rid, m in markers]
    )


def decode_marker(data: bytes) -> Marker:
    raw = orjson.loads(data)
    return Marker(float(raw["t"]), frozenset(raw["a"]), frozenset(raw["r"]))


def iter_markers(key: bytes | None, value: bytes | None) -> Iterator[tuple[str, Marker]]:
    """The markers in one changelog record, whichever of the two formats it uses."""
    if key is None or not value:
        return
    try:
        if key == MARKERS_KEY:
            for rid, closed_at, asked, received in orjson.loads(value):
                yield str(rid), Marker(float(closed_at), frozenset(asked), frozenset(received))
        else:
            yield key.decode(), decode_marker(value)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return


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
        flush_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.flush_timeout_s = flush_timeout_s
        self.topics = topics
        self.partitions = partitions
        self.fanout = fanout
        self.builder = builder
        self.window_s = window_s
        self.late_retention_s = late_retention_s
        self.commit_interval_s = commit_interval_s
        self.max_message_bytes = max_message_bytes
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.expire_interval_s = expire_interval_s
        self.engines: dict[int, JoinEngine] = {}
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
        }
        self._current: tuple[bytes, bytes | None, int, Sequence[str] | None, bool] | None = None
        # fan-out and comparison messages of the current step, per (topic, partition):
        # queued with one produce_batch call each at the end of the step
        self._out: dict[tuple[str, int], list[dict[str, Any]]] = {}

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
        self.producer = OutputProducer(self.kafka.producer(), "router")
        self.producer.on_wait = self.beat
        self.deadletters = DeadLetters(self.producer, self.topics.deadletter, "router")
        self.stats = StatsReporter(self.producer, self.topics.stats, "router")
        self.control = ControlFollower(self.kafka, self.topics.control, self.fanout.experiments)

    async def teardown(self) -> None:
        self._report_stats()
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
        self._out.clear()
        self._forget(sorted(self.engines))

    def _forget(self, numbers: Sequence[int]) -> None:
        for p in numbers:
            self.engines.pop(p, None)
            for source in (SOURCE_REQUESTS, SOURCE_BATCH, SOURCE_RESPONSES):
                self._consumed.pop((source, p), None)
        self.fanout.set_share(len(self.engines) / max(self.partitions, 1))

    def _new_engine(self, partition: int) -> JoinEngine:
        def dispatch(
            request: dict[str, Any], champion: dict[str, Any], names: tuple[str, ...]
        ) -> None:
            self._dispatch_replay(partition, request, champion, names)

        return JoinEngine(
            window_s=self.window_s,
            late_retention_s=self.late_retention_s,
            build=self.builder,
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
        value = msg.value()
        if not value:
            self.deadletters.send(msg, "empty", "message has no value")
            return
        if len(value) > self.max_message_bytes:
            self.deadletters.send(
                msg, "oversized", f"{len(value)} bytes > limit {self.max_message_bytes}"
            )
            return
        try:
            event = (RESPONSE if source == SOURCE_RESPONSES else REQUEST).decode(value)
        except SchemaError as exc:
            self.deadletters.send(msg, getattr(exc, "reason", "invalid"), str(exc))
            return
        rid = event.get("request_id")
        if not rid:
            self.deadletters.send(msg, "missing_request_id", "request_id is empty")
            return
        if source == SOURCE_RESPONSES:
            outputs = engine.add_response(event, SOURCE_RESPONSES, offset)
            if event["role"] == "challenger":
                self.fanout.record_usage(event["challenger"], event)
        else:
            header = _header(msg, TARGETS_HEADER)
            targets = header.decode().split(",") if header else None
            self._current = (value, msg.key(), partition, targets, source == SOURCE_BATCH)
            outputs = engine.add_request(event, self._route, source, offset)
            self._current = None
        if outputs:
            self._emit(outputs, partition)

    def _route(self, request: dict[str, Any]) -> list[str]:
        """Called by the join once per new request: choose challengers, forward the bytes."""
        assert self._current is not None
        value, key, partition, targets, batch = self._current
        asked = self.fanout.route(request, targets)
        for name in asked:
            if name in self._replay:
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
        value = REQUEST.encode(request)
        trace = champion.get("tool_trace")
        headers = [(TOOL_TRACE_HEADER, trace.encode())] if trace else None
        batch = (request.get("experiment_id") or "live") != "live"
        for name in names:
            live_topic, batch_topic = self._fanout_topics[name]
            self.producer.produce(
                batch_topic if batch else live_topic,
                value,
                request["request_id"],
                partition=partition,
                headers=headers,
            )
        self.counters["fanned_out"] += len(names)
        self.counters["replayed_tool_traces"] += len(names) if trace else 0

    def _emit(self, comparisons: list[dict[str, Any]], partition: int) -> None:
        topic = self.topics.comparisons
        for comparison in comparisons:
            self._queue(topic, partition, COMPARISON.encode(comparison), comparison["request_id"])
        self.counters["comparisons"] += len(comparisons)

    def _queue(self, topic: str, partition: int, value: bytes, key: bytes | str) -> None:
        batch = self._out.get((topic, partition))
        if batch is None:
            batch = self._out[(topic, partition)] = []
        batch.append({"value": value, "key": key})

    def _send_out(self) -> None:
        """Hand this step's outputs to the producer: one call per (topic, partition)."""
        if not self._out:
            return
        out, self._out = self._out, {}
        for (topic, partition), messages in out.items():
            self.producer.produce_batch(topic, partition, messages)

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
        }
