"""What the router sends out: each new request to the challengers the fan-out chose,
the comparisons the join completed, and the pairs left to the LLM judge.

Requests go out as their original bytes, on the same partition, to a challenger's
live or batch topic; a record-replay challenger's request goes out once the
champion's response is in, re-encoded with the champion's tool trace in a header.
Everything is queued in the :class:`~shadowstream.stream_agents.outbox.Outbox`
(one produce call per topic and partition and step), except record-replay
requests, which are produced at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from confluent_kafka import KafkaException

from shadowstream.core.errors import SchemaError
from shadowstream.core.topics import TopicNames
from shadowstream.runtime.kafka_io import OutputProducer
from shadowstream.schemas import REQUEST
from shadowstream.schemas.records import RequestEvent, ResponseEvent
from shadowstream.schemas.wire import TOOL_TRACE_HEADER
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.guards import Emitted
from shadowstream.stream_agents.judge.jobs import JudgeJob
from shadowstream.stream_agents.outbox import Outbox

# the request being handled: (its bytes, key, partition, the batch run's targets,
# from the batch topic, challengers whose answers came with it)
Handling = tuple[bytes, bytes | None, int, Sequence[str] | None, bool, frozenset[str]]


class RouterOutputs:
    """The router's sending side; ``counters`` are the router's own (shared)."""

    def __init__(self, fanout: FanOut, topics: TopicNames, counters: dict[str, int]) -> None:
        self.fanout = fanout
        self.topics = topics
        self.counters = counters
        self.fanout_topics = {
            s.name: (topics.challenger(s.name), topics.challenger_batch(s.name))
            for s in fanout.specs
        }
        # challengers that answer with the champion's recorded tool calls (record-replay):
        # their request goes out once the champion's response, with its tool trace, is in
        self.replay = frozenset(s.name for s in fanout.specs if s.replay_tools)
        self.current: Handling | None = None  # set by the router around add_request
        self.judge_jobs: list[JudgeJob] = []  # pairs for the LLM judge, this step

    def start(self, producer: OutputProducer, outbox: Outbox) -> None:
        self.producer = producer
        self.outbox = outbox

    def clear(self) -> None:
        """Drop what is queued (fenced: the next owner replays the work that made it)."""
        self.outbox.clear()
        self.judge_jobs.clear()

    def route(self, request: RequestEvent) -> list[str]:
        """Called by the join once per new request: choose challengers, forward the bytes."""
        assert self.current is not None
        value, key, partition, targets, batch, answered = self.current
        asked = self.fanout.route(request, targets, answered)
        for name in asked:
            if name in self.replay or name in answered:
                continue  # sent by dispatch_replay when the champion's answer is in
            live_topic, batch_topic = self.fanout_topics[name]
            self.outbox.queue(
                batch_topic if batch else live_topic,
                partition,
                value,
                key or request["request_id"].encode(),
            )
        self.counters["fanned_out"] += len(asked)
        return asked

    def dispatch_replay(
        self,
        partition: int,
        request: RequestEvent,
        champion: ResponseEvent,
        names: tuple[str, ...],
    ) -> None:
        """The request to each record-replay challenger of ``names``, with the tool trace."""
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
            live_topic, batch_topic = self.fanout_topics[name]
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

    def emit(self, outputs: list[Emitted], partition: int) -> None:
        """The join's comparisons, then the pairs the builder deferred to the LLM judge."""
        self.counters["comparisons"] += self.outbox.comparisons(outputs, partition)
        if self.judge_jobs:
            jobs, self.judge_jobs = self.judge_jobs, []
            for job in jobs:
                rid = job["comparison"]["request_id"]
                self.outbox.queue(self.topics.judge, partition, orjson.dumps(job), rid)
            self.counters["judge_jobs"] += len(jobs)
