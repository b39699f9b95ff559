"""PII never leaves the service: planted values of every kind, the real pipeline, every byte read.

The service emits through the SDK with a redaction policy (path rules, every detector);
the agents run the same policy's storage_only rules and the service's rules on challenger
answers. Then every topic's raw bytes, every ClickHouse table and the HTML and JSON
reports are searched for each planted value.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from shadowstream.analytics.export import report_json
from shadowstream.analytics.html import render_html
from shadowstream.analytics.queries import EPOCH, FAR_FUTURE, Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.producers import ShadowEmitter
from shadowstream.producers.redaction import RedactionPolicy, Redactor
from shadowstream.warehouse.client import Warehouse
from tests.support import pii
from tests.support.harness import count, dump_tables, start_pipeline, wait_for

N = 40
KEY = "redaction-key-for-the-pii-test-0123"


def read_topics(bootstrap: str, prefix: str) -> dict[str, bytes]:
    """Every record (key, value, headers) of every topic of this test, as raw bytes."""
    topics = [
        name
        for name in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
        if name.startswith(prefix + ".")
    ]
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{prefix}-audit", "enable.auto.commit": False}
    )
    out: dict[str, bytes] = {}
    try:
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=30).topics[topic]
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    for p in meta.partitions}  # fmt: skip
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
            chunks: list[bytes] = []
            left = {p for p, end in ends.items() if end > 0}
            deadline = time.monotonic() + 60
            while left and time.monotonic() < deadline:
                for msg in consumer.consume(1000, 0.5):
                    if msg.error() is not None:
                        continue
                    chunks += [msg.key() or b"", msg.value() or b""]
                    chunks += [v for _, v in msg.headers() or [] if isinstance(v, bytes)]
                    if (msg.offset() or 0) + 1 >= ends[msg.partition() or 0]:
                        left.discard(msg.partition() or 0)
            assert not left, f"could not read all of {topic}"
            out[topic] = b"\x00".join(chunks)
    finally:
        consumer.close()
    return out


def emit(settings: Any) -> ShadowEmitter:
    emitter = ShadowEmitter(
        settings.broker_url,
        service="support",
        topic_prefix=settings.topic_prefix,
        redaction=pii.POLICY,
    )
    for i in range(N):
        rid = f"pii-{i}"
        attributes = {"customer_id": pii.CUSTOMER_ID, "contact": pii.EMAIL, "tier": "pro"}
        emitter.emit_request(
            rid, f"/v1/users/{pii.EMAIL}/tickets", pii.payload(i), attributes=attributes
        )
        failed = i % 4 == 0
        emitter.emit_response(
            rid,
            None if failed else pii.champion_output(i),
            5.0,
            status="error" if failed else "ok",
            error=f"CRMError: no record for {pii.EMAIL} ({pii.BEARER})" if failed else None,
            tool_trace=pii.tool_trace(),
        )
    assert emitter.flush(30) == 0
    return emitter


def test_no_planted_pii_reaches_kafka_clickhouse_or_the_report(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOW_REDACTION_KEY", KEY)
    settings = make_settings(
        redaction=pii.POLICY,
        challengers=[
            {"name": "echo", "callable": "tests.support.pii:echo"},
            {"name": "broken", "callable": "tests.support.pii:broken"},
        ],
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            emitter = emit(settings)
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 2 * N, 120, what="comparisons")
            responses = f"SELECT count() FROM {wh.database}.responses FINAL"
            await wait_for(lambda: wh.query(responses).scalar() >= 3 * N, 60, what="responses")
            metrics = pipeline.metrics()
        finally:
            await pipeline.stop()
        check_everything(settings, wh, emitter, metrics)

    asyncio.run(scenario())


def check_everything(settings: Any, wh: Warehouse, emitter: ShadowEmitter, metrics: Any) -> None:
    prefix = settings.topic_prefix
    topics = read_topics(settings.broker_url.removeprefix("kafka://"), prefix)
    tables = dump_tables(wh)
    report = build_report(
        Scope(wh, TimeRange(EPOCH, FAR_FUTURE), "", False),
        ReportOptions(examples_per_challenger=100, min_slice_compared=1, slices_per_challenger=50),
    )
    documents = {"report.html": render_html(report), "report.json": report_json(report)}
    assert f"{prefix}.comparisons" in topics and "comparisons" in tables and "requests" in tables

    for value in pii.NEVER_ANYWHERE:
        for topic, blob in topics.items():
            assert value.encode() not in blob, f"{value!r} in topic {topic}"
        for table, rows in tables.items():
            assert value not in rows, f"{value!r} in table {table}"
        for name, text in documents.items():
            assert value not in text, f"{value!r} in {name}"

    # storage_only: the challengers saw it, nothing stored or compared has it
    assert pii.ADDRESS.encode() in topics[f"{prefix}.challenger.echo"]
    assert pii.ADDRESS.encode() not in topics[f"{prefix}.comparisons"]
    for table, rows in tables.items():
        assert pii.ADDRESS not in rows, f"storage-only value in table {table}"
    assert all(pii.ADDRESS not in text for text in documents.values())

    # a hashed attribute is still a slice: the same value everywhere, for the same key
    policy = RedactionPolicy.from_mapping(pii.POLICY)
    hashed = Redactor(policy).field({"customer_id": pii.CUSTOMER_ID}, "attributes", {})
    stored = wh.query(
        f"SELECT groupUniqArray(attributes['customer_id']) FROM {wh.database}.comparisons FINAL"
    ).scalar()
    assert stored == [hashed["customer_id"]]
    assert any(s.attribute == "customer_id" for s in report.slices)

    # what was redacted, per rule, where
    redacted = emitter.stats().redacted
    assert redacted["hash:*customer_id"] == N and redacted["drop:*.password"] == N
    for detector in ("email", "phone", "card", "iban", "ipv4", "ipv6", "credential"):
        assert redacted[f"detector:{detector}"] >= N, detector
    assert metrics["router"]["redacted"]["mask:$.shipping.address"] == N
    assert metrics["challenger:echo"]["redacted"]["detector:phone"] == N
    assert metrics["sink"]["redacted"]["mask:$.shipping.address"] == N  # raw requests
    for name in ("echo", "broken"):  # the address quoted back, scrubbed by value
        assert metrics[f"challenger:{name}"]["redacted"]["storage_only_values_in_answers"] == N
    emitter.close(5)
