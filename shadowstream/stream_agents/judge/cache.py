"""The judge's verdict cache: in memory (LRU), persisted on a Kafka topic.

Key: :func:`~shadowstream.stream_agents.judge.prompt.cache_key` (judge model,
rubric, input, both answers). Every considered verdict (better, same,
worse, undecided; not errors or budget skips) is written to
``<prefix>.judge.cache`` keyed by it, and a judge agent reads the topic back
when it starts, so a replay of the same traffic through the same challenger
(same answers) is judged from the cache - after a restart too.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from shadowstream.core.kafka import KafkaClientConfig

log = logging.getLogger(__name__)


class VerdictCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def get(self, key: str) -> tuple[str, str] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, verdict: str, rationale: str) -> None:
        if self.capacity <= 0:
            return
        self._items[key] = (verdict, rationale)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def encode_entry(verdict: str, rationale: str) -> bytes:
    return orjson.dumps({"v": verdict, "r": rationale, "t": time.time()})


def restore(
    cache: VerdictCache, kafka: KafkaClientConfig, topic: str, timeout_s: float = 60.0
) -> int:
    """Read the cache topic from its beginning up to its current end into ``cache``."""
    if cache.capacity <= 0:
        return 0
    consumer = Consumer(kafka.consumer(f"{topic}.restore.{uuid.uuid4().hex[:8]}"))
    read = 0
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        ends: dict[int, int] = {}
        assignment = []
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        if not assignment:
            return 0
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(5_000, 0.5):
                if msg.error() is not None:
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
                key, value = msg.key(), msg.value()
                if not key or not value:
                    continue
                try:
                    entry = orjson.loads(value)
                    cache.put(key.decode(), str(entry["v"]), str(entry.get("r", "")))
                    read += 1
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    continue
        return read
    except KafkaException as exc:
        log.warning("judge: could not read the verdict cache %s (%s); starting empty", topic, exc)
        return read
    finally:
        consumer.close()
