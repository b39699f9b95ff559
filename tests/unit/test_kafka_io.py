"""Offset tracking for out-of-order completion (the guard against faust-streaming#606),
and the output producer's batched path."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError

from shadowstream.core.errors import BrokerError
from shadowstream.runtime.kafka_io import MESSAGE_HEADROOM, OffsetTracker, OutputProducer


def positions(tracker: OffsetTracker) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): tp.offset for tp in tracker.committable()}


def test_commit_position_never_passes_work_in_flight() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        tracker.start("t", 0, offset)
    # a slow request (10) is still running while later ones finish
    for offset in (11, 12, 13, 14):
        tracker.finish("t", 0, offset)
    assert positions(tracker) == {("t", 0): 10}
    tracker.finish("t", 0, 10)
    assert positions(tracker) == {("t", 0): 15}


def test_partitions_are_independent_and_skips_count_as_done() -> None:
    tracker = OffsetTracker()
    tracker.start("t", 0, 0)
    tracker.skip("t", 1, 7)
    assert positions(tracker) == {("t", 0): 0, ("t", 1): 8}
    assert tracker.in_flight() == 1


def test_work_finishing_after_a_revoke_is_ignored() -> None:
    tracker = OffsetTracker()
    tracker.start("t", 0, 3)
    tracker.forget("t", 0)
    tracker.finish("t", 0, 3)
    assert positions(tracker) == {}


# -- OutputProducer.produce_batch ---------------------------------------------------------
class _SmallQueue:
    """librdkafka's produce_batch contract: queue what fits, mark the rest with "_error"."""

    def __init__(self, room_per_call: int) -> None:
        self.room = room_per_call
        self.queued: list[bytes] = []
        self.polls = 0

    def produce_batch(self, topic: str, messages: list[dict[str, Any]], partition: int) -> int:
        for i, message in enumerate(messages):
            if i < self.room:
                self.queued.append(message["value"])
            else:
                message["_error"] = KafkaError(KafkaError._QUEUE_FULL)
        return min(self.room, len(messages))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0


def test_produce_batch_retries_what_did_not_fit_in_order() -> None:
    producer = OutputProducer({"bootstrap.servers": "127.0.0.1:1"}, "test")
    fake = _SmallQueue(room_per_call=4)
    producer._producer = fake  # type: ignore[assignment]
    values = [f"m{i}".encode() for i in range(10)]
    producer.produce_batch("t", 0, [{"value": v, "key": "k"} for v in values])
    assert fake.queued == values
    assert producer.produced == 10
    assert fake.polls == 2  # waited for room twice (4 + 4 + 2)


def test_produce_batch_on_real_librdkafka_waits_for_room() -> None:
    # no broker: queued messages time out after 200 ms and free room for the rest
    producer = OutputProducer(
        {
            "bootstrap.servers": "127.0.0.1:1",
            "queue.buffering.max.messages": 10,
            "message.timeout.ms": 200,
            "log_level": 0,
        },
        "test",
    )
    started = time.monotonic()
    producer.produce_batch("t", 0, [{"value": b"x", "key": "k"} for _ in range(25)])
    assert producer.produced == 25
    assert time.monotonic() - started < 10
    with pytest.raises(BrokerError, match="could not be delivered"):
        producer.flush_sync(timeout=5)


def test_produce_batch_returns_what_librdkafka_refuses_for_good() -> None:
    """A message over message.max.bytes is refused when queued: retrying it would loop
    for ever (the router stalled on one oversized comparison); it comes back instead."""
    producer = OutputProducer(
        {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}, "test", max_message_bytes=10_000
    )
    limit = 10_000 + MESSAGE_HEADROOM
    messages = [
        {"value": b"a", "key": "k"},
        {"value": b"x" * (limit + 1), "key": "k"},
        {"value": b"b" * (limit - 100), "key": "k"},  # fits, with its key
    ]
    refused = producer.produce_batch("t", 0, messages)
    assert [(i, e.code()) for i, e in refused] == [(1, KafkaError.MSG_SIZE_TOO_LARGE)]
    assert producer.produced == 2
