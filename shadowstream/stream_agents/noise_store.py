"""The noise model on Kafka: learned noisy paths survive a router restart.

One compacted topic (``<prefix>.noise``, one partition), one record per scope
(key: the JSON ``[service, endpoint]``; value: the scope's samples, path counts
and noisy set, NoiseLearner.export_state). The router writes the scopes that
changed at most every ``interval_s`` (with its commit, after the flush), and
reads the whole topic back when it starts: the last record of each scope wins.
Several routers each write what they learned; any of them is a sound model.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.stream_agents.noise import NoiseLearner

log = logging.getLogger(__name__)


def encode_scope(learner: NoiseLearner, scope: tuple[str, str]) -> tuple[bytes, bytes] | None:
    state = learner.export_state(scope)
    if state is None:
        return None
    return orjson.dumps(list(scope)), orjson.dumps(state)


def restore_noise(
    kafka: KafkaClientConfig, topic: str, learner: NoiseLearner, timeout_s: float = 30.0
) -> int:
    """Load every scope stored on ``topic`` into ``learner``; returns how many."""
    consumer = Consumer(kafka.consumer(f"{topic}.restore.{uuid.uuid4().hex[:8]}"))
    latest: dict[bytes, bytes] = {}
    try:
        try:
            meta = consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            log.warning("noise model topic %s unavailable (%s): starting empty", topic, exc)
            return 0
        topic_meta = meta.topics.get(topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            log.warning("noise model topic %s does not exist: starting empty", topic)
            return 0
        deadline = time.monotonic() + timeout_s
        for partition in topic_meta.partitions:
            tp = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
            position = low
            while position < high and time.monotonic() < deadline:
                for msg in consumer.consume(1000, 1.0):
                    if msg.error() is not None:
                        continue
                    position = (msg.offset() or 0) + 1
                    key, value = msg.key(), msg.value()
                    if key and value:
                        latest[key] = value
    finally:
        consumer.close()
    loaded = 0
    for value in latest.values():
        try:
            data: Any = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        loaded += int(learner.restore_state(data))
    log.info("noise model: restored %s scopes from %s", loaded, topic)
    return loaded
