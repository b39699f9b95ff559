"""The router's outputs of one step, and what happens to those that cannot be made.

Fan-out and comparison messages are queued per (topic, partition) and handed
to the producer with one ``produce_batch`` call each at the end of a step. Each
remembers the message it came from (None for a window expiry), so that one
the producer refuses for good (too large, say) is dead-lettered with that
message's original bytes instead of being retried for ever.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, Message

from shadowstream.core.errors import SchemaError
from shadowstream.core.topics import TopicNames
from shadowstream.runtime.kafka_io import DeadLetters, OutputProducer
from shadowstream.schemas import REQUEST
from shadowstream.stream_agents.guards import BuildFailure, Built, Emitted

log = logging.getLogger(__name__)


class Outbox:
    """Queue, send, and dead-letter what cannot be sent."""

    def __init__(
        self, producer: OutputProducer, deadletters: DeadLetters, topics: TopicNames
    ) -> None:
        self.producer = producer
        self.deadletters = deadletters
        self.topics = topics
        self.handling: Message | None = None  # the message being handled, if any
        self._out: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._sources: dict[tuple[str, int], list[Message | None]] = {}

    def queue(self, topic: str, partition: int, value: bytes, key: bytes | str) -> None:
        batch = self._out.get((topic, partition))
        if batch is None:
            batch = self._out[(topic, partition)] = []
            self._sources[(topic, partition)] = []
        batch.append({"value": value, "key": key})
        self._sources[(topic, partition)].append(self.handling)

    def comparisons(self, outputs: list[Emitted], partition: int) -> int:
        """Queue the encoded comparisons, dead-letter the failed ones; how many queued."""
        topic = self.topics.comparisons
        failed: list[BuildFailure] = []
        for out in outputs:
            if isinstance(out, Built):
                self.queue(topic, partition, out.value, out.key)
            else:
                failed.append(out)
        if failed:
            self._comparisons_failed(failed, partition)
        return len(outputs) - len(failed)

    def fanout_failed(self, detail: str) -> None:
        if self.handling is not None:
            self.deadletters.send(self.handling, "fanout_failed", detail)
        else:
            log.error("router: %s", detail)

    def clear(self) -> None:
        """Drop what is queued and not handed to the producer yet (a fenced router: the
        next owner replays the work that produced it)."""
        self._out = {}
        self._sources = {}

    def send(self) -> None:
        """Hand the queued outputs to the producer: one call per (topic, partition)."""
        if not self._out:
            return
        out, self._out = self._out, {}
        sources, self._sources = self._sources, {}
        for (topic, partition), messages in out.items():
            refused = self.producer.produce_batch(topic, partition, messages)
            if refused:
                self._refused(topic, [(sources[(topic, partition)][i], e) for i, e in refused])

    def _refused(self, topic: str, refused: list[tuple[Message | None, KafkaError]]) -> None:
        """Messages the producer refuses for good: dead-letter each source message once."""
        reason = "comparison_failed" if topic == self.topics.comparisons else "fanout_failed"
        seen: set[int] = set()
        for source, err in refused:
            if source is None:
                log.error("router: a message to %s was refused: %s", topic, err)
            elif id(source) not in seen:
                seen.add(id(source))
                self.deadletters.send(source, reason, f"not produced to {topic}: {err.str()}")

    def _comparisons_failed(self, failed: list[BuildFailure], partition: int) -> None:
        """Dead-letter the message whose arrival completed them, once; at a window expiry
        there is none: each request, re-encoded, stands in for it (offset -1)."""
        if self.handling is not None:
            detail = "; ".join(f.describe() for f in failed)
            self.deadletters.send(self.handling, "comparison_failed", detail)
            return
        by_request: dict[str, list[BuildFailure]] = {}
        for failure in failed:
            by_request.setdefault(failure.request_id, []).append(failure)
        for rid, failures in by_request.items():
            request = failures[0].request
            value: bytes | None = None
            batch = False
            if request is not None:
                batch = (request.get("experiment_id") or "live") != "live"
                try:
                    value = REQUEST.encode(request)
                except SchemaError:
                    value = None
            topic = self.topics.batch_requests if batch else self.topics.requests
            detail = "at window expiry; original_value is the request re-encoded; " + "; ".join(
                f.describe() for f in failures
            )
            self.deadletters.send_raw(
                topic, partition, -1, rid.encode(), value, "comparison_failed", detail
            )
