"""The control topic: small, compacted, read in full by every agent instance.

Commands are JSON objects keyed by experiment id, e.g.::

    {"type": "experiment", "experiment_id": "b-42", "challengers": ["fast"]}
    {"type": "cancel", "experiment_id": "b-42"}

Every router and worker follows the topic from its beginning (no consumer
group), so a cancel reaches all of them.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.schemas.wire import decode_command
from shadowstream.stream_agents.fanout import ExperimentRegistry

log = logging.getLogger(__name__)


class ControlFollower:
    """Reads the control topic from the beginning and keeps an ExperimentRegistry current."""

    def __init__(self, kafka: KafkaClientConfig, topic: str, registry: ExperimentRegistry) -> None:
        self.topic = topic
        self.registry = registry
        conf = kafka.consumer(f"{topic}.follower.{uuid.uuid4().hex[:8]}")
        conf["enable.partition.eof"] = False
        conf["fetch.wait.max.ms"] = 1000  # a quiet topic: poll the broker rarely
        self._consumer = Consumer(conf)
        self._assigned = False
        self._last_attempt = 0.0

    def _assign(self) -> bool:
        if self._assigned:
            return True
        if time.monotonic() - self._last_attempt < 5.0:
            return False
        self._last_attempt = time.monotonic()
        try:
            meta = self._consumer.list_topics(self.topic, timeout=5)
        except KafkaException as exc:
            log.warning("control topic %s unavailable: %s", self.topic, exc)
            return False
        topic_meta = meta.topics.get(self.topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            return False
        self._consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in topic_meta.partitions]
        )
        self._assigned = True
        return True

    def restart(self) -> None:
        """Read the topic from its beginning again (callable from any thread): after
        the broker lost its data the topic was re-created, and the old position would
        skip every new command until the offsets caught up."""
        self._assigned = False
        self._last_attempt = 0.0

    def poll_sync(self, timeout: float = 0.0, max_messages: int = 1000) -> int:
        """Apply any new commands; returns how many were applied."""
        if not self._assign():
            return 0
        applied = 0
        for msg in self._consumer.consume(max_messages, timeout):
            value = msg.value()
            if msg.error() is not None or not value:
                continue
            command = decode_command(value)
            if command is None:
                log.warning("ignoring undecodable control message at offset %s", msg.offset())
                continue
            self.registry.apply(command)
            applied += 1
        return applied

    def close(self) -> None:
        self._consumer.close()
