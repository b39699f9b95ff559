"""Garbage on every input topic goes to the dead-letter topic; good traffic is untouched."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, Producer

from shadowstream.schemas import COMPARISON, DEAD_LETTER, REQUEST, RESPONSE
from tests.support.harness import count, emit_traffic, start_pipeline, wait_for

KINDS = ["not_avro", "truncated", "unknown_schema", "missing_request_id", "oversized"]
LIMIT = 16_000  # max_message_bytes for this test


def random_bytes(rng: random.Random) -> bytes:
    data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    return b"\x00" + data  # never starts with the Avro single-object magic


def valid_request(rid: str, payload: str = '{"i": 0}') -> bytes:
    return REQUEST.encode(
        {
            "request_id": rid,
            "timestamp_us": 1,
            "service": "s",
            "endpoint": "/predict",
            "champion_model": "m",
            "payload": payload,
            "attributes": {},
            "experiment_id": "live",
        }
    )


def valid_response(rid: str) -> bytes:
    return RESPONSE.encode(
        {
            "request_id": rid,
            "timestamp_us": 1,
            "role": "champion",
            "challenger": "",
            "model": "m",
            "output": "{}",
            "latency_ms": 1.0,
            "status": "ok",
            "error": None,
            "usage": {"tokens_in": None, "tokens_out": None, "tool_calls": None, "cost": None},
            "tool_trace": None,
            "experiment_id": "live",
        }
    )


def valid_comparison(rid: str) -> bytes:
    record: dict[str, Any] = {
        "request_id": rid,
        "challenger": "same",
        "outcome": "both_answered",
        "request_ts_us": 1,
        "compared_at_us": 1,
        "champion_status": "ok",
        "challenger_status": "ok",
    }
    return COMPARISON.encode(record)


def garbage(kind: str, topic_kind: str, i: int, rng: random.Random) -> bytes:
    make = {
        "requests": valid_request,
        "responses": valid_response,
        "comparisons": valid_comparison,
    }[topic_kind]
    if kind == "not_avro":
        return random_bytes(rng)
    if kind == "truncated":
        data = make(f"bad-{topic_kind}-{i}")
        return data[: rng.randint(11, len(data) - 2)]
    if kind == "unknown_schema":
        data = bytearray(make(f"bad-{topic_kind}-{i}"))
        data[2:10] = os.urandom(8)
        return bytes(data)
    if kind == "missing_request_id":
        return make("")
    if kind == "oversized":
        if topic_kind == "requests":
            return valid_request(f"big-{i}", '{"blob": "' + "x" * LIMIT + '"}')
        return make(f"big-{topic_kind}-{i}") + b"\x00" * LIMIT
    raise AssertionError(kind)


def test_bad_messages_go_to_the_dead_letter_topic_with_a_reason(make_settings: Any) -> None:
    settings = make_settings(
        max_message_bytes=LIMIT,
        challengers=[{"name": "same", "callable": "tests.support.models:same", "concurrency": 32}],
    )
    prefix = settings.topic_prefix
    bootstrap = settings.broker_url.removeprefix("kafka://")
    rng = random.Random(7)
    per_kind = {"requests": 400, "responses": 400, "comparisons": 200}  # 1000 of each kind

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000_000})
            emit_traffic(settings, 300, prefix="good-a")
            sent: Counter[tuple[str, str]] = Counter()
            for kind in KINDS:
                for topic_kind, n in per_kind.items():
                    for i in range(n):
                        value = garbage(kind, topic_kind, i, rng)
                        producer.produce(f"{prefix}.{topic_kind}", value, f"k{i}".encode())
                        sent[(kind, topic_kind)] += 1
                        if i % 100 == 0:
                            producer.poll(0)
            assert producer.flush(30) == 0
            emit_traffic(settings, 300, prefix="good-b")
            wh = pipeline.warehouse
            # every good request is compared, despite the garbage around it
            await wait_for(lambda: count(wh) >= 600, 120, what="600 good comparisons")
            dead = await read_deadletters(bootstrap, prefix, expected=sum(sent.values()) + 4000)
            await asyncio.sleep(1)
            assert count(wh) == 600
            assert count(wh, "startsWith(request_id, 'bad') OR startsWith(request_id, 'big')") == 0

            # the router dead-letters garbage on requests and responses, the sink
            # on everything it reads (comparisons and the raw requests/responses)
            by_stage_reason = Counter((d["stage"], d["reason"]) for d in dead)
            for kind in KINDS:
                assert by_stage_reason[("router", kind)] == 800, (kind, by_stage_reason)
                assert by_stage_reason[("sink", kind)] == 1000, (kind, by_stage_reason)
            # originals are kept byte for byte, with where they came from
            for d in dead[:200]:
                assert d["source_topic"].startswith(prefix)
                assert d["source_offset"] >= 0
                assert d["original_value"]
            metrics = pipeline.metrics()
            assert metrics["router"]["deadletters"] == {k: 800 for k in KINDS}
            assert metrics["sink"]["deadletters"] == {k: 1000 for k in KINDS}
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


async def read_deadletters(bootstrap: str, prefix: str, expected: int) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{prefix}-dlq-check",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([f"{prefix}.deadletter"])
    records: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    quiet_since = loop.time()
    while loop.time() < deadline:
        batch = await loop.run_in_executor(None, consumer.consume, 5000, 0.5)
        for msg in batch:
            if msg.error() is None:
                records.append(DEAD_LETTER.decode(msg.value()))
        if batch:
            quiet_since = loop.time()
        elif len(records) >= expected and loop.time() - quiet_since > 3:
            break
    consumer.close()
    return records
