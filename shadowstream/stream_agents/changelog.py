"""Reading the router's changelog back after an assignment: the markers of closed requests.

One consumer for all the newly assigned partitions, each read from a point in
time to its end. Called inside the rebalance callback, before any input of the
new assignment is handed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from shadowstream.schemas.wire import Marker

Decode = Callable[[bytes | None, bytes | None], Iterator[tuple[str, Marker]]]


def read_changelog(
    conf: dict[str, Any],
    topic: str,
    partitions: Sequence[int],
    *,
    since: float,
    decode: Decode,
    progress: Callable[[], None] = lambda: None,
    deadline_s: float = 120.0,
) -> dict[int, list[tuple[str, Marker]]]:
    """The markers of each partition written since ``since`` (epoch seconds), oldest first."""
    consumer = Consumer(conf)
    markers: dict[int, list[tuple[str, Marker]]] = {p: [] for p in partitions}
    try:
        positions, ends = _bounds(consumer, topic, partitions, since)
        if not positions:
            return markers
        consumer.assign([TopicPartition(topic, p, o) for p, o in positions.items()])
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            progress()
            batch = consumer.consume(10_000, 0.1)
            for msg in batch:
                if msg.error() is None:
                    partition = msg.partition() or 0
                    positions[partition] = (msg.offset() or 0) + 1
                    markers[partition].extend(decode(msg.key(), msg.value()))
            # the reported end can be short of the real one (Tansu reports the last
            # batch's first offset + 1): stop only once a read also comes back empty
            if not batch and all(positions[p] >= end for p, end in ends.items()):
                break
        return markers
    finally:
        consumer.close()


def _bounds(
    consumer: Consumer, topic: str, partitions: Sequence[int], since: float
) -> tuple[dict[int, int], dict[int, int]]:
    """Where to start (the first record at ``since``, or the log start) and where the log
    ends, for each partition that has anything."""
    positions: dict[int, int] = {}
    ends: dict[int, int] = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            positions[p], ends[p] = low, high
    if not positions:
        return positions, ends
    since_ms = int(since * 1000)
    try:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in positions], timeout=10
        )
    except Exception:  # brokers without timestamp lookup: read it all
        found = []
    for tp in found:
        if tp.offset >= 0 and tp.partition in positions:
            positions[tp.partition] = max(positions[tp.partition], tp.offset)
    return positions, ends
