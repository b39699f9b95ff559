"""A rolling upgrade both ways through the real broker: new SDKs against old agents, old SDKs
against new agents, and old and new agents side by side in the same consumer groups.

"Old" is this code base run as its previous event-schema version
(tests/support/schema_versions.py: v1 schemas, migrations before 0050); "new"
adds optional fields (RequestEvent.traceparent, ComparisonEvent.trace_id and
span_id). Old readers find the new schemas on the schema topic; nothing is
dead-lettered except one event whose schema nobody published; the new fields
are stored once the agents that know them store the events.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from opentelemetry.sdk.trace import TracerProvider

from shadowstream.pipeline.app import create_topics
from shadowstream.pipeline.processes import ROOT, AgentProcess, settings_env
from shadowstream.producers import ShadowEmitter
from shadowstream.schemas import DEAD_LETTER, REQUEST
from shadowstream.schemas.codec import load_history, schema_fingerprint
from shadowstream.warehouse.client import chdb_path
from shadowstream.warehouse.owner import RemoteWarehouse, live_owner
from tests.support.harness import wait_for
from tests.support.models import champion_output

N = 100  # requests per SDK per phase
OLD = "tests.support.schema_versions"
ROLES = {
    "router": ["worker", "router"],
    "worker": ["worker", "challenger", "--name", "same"],
    "sink": ["worker", "sink"],
}


def new_sdk(settings: Any, id_prefix: str, tracer: Any) -> dict[str, str]:
    """N traced requests from this version's SDK; request id -> its trace id."""
    emitter = ShadowEmitter(
        settings.broker_url, service="new-sdk", topic_prefix=settings.topic_prefix
    )
    assert emitter._announcer is not None and emitter._announcer.published.wait(30)
    traces = {}
    for i in range(N):
        with tracer.start_as_current_span("handler") as span:
            rid = f"{id_prefix}-{i}"
            with emitter.capture("/predict", {"i": i}, request_id=rid) as call:
                call.output = champion_output({"i": i})
            traces[rid] = f"{span.get_span_context().trace_id:032x}"
    emitter.close(30)
    assert emitter.stats().delivered == 2 * N
    return traces


def old_sdk(settings: Any, id_prefix: str) -> None:
    """N requests from the previous version's SDK, in a process of its own."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            OLD,
            "emit",
            settings.broker_url,
            settings.topic_prefix,
            str(N),
            id_prefix,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        check=True,
    )
    stats = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert stats["emitted"] == 2 * N and stats["dropped_undeliverable"] == 0, stats


def plant_hostile_bytes(settings: Any) -> None:
    """Garbage on the schema topic, and one event whose writer schema nobody published."""
    producer = Producer({"bootstrap.servers": settings.broker_url.removeprefix("kafka://")})
    topic = f"{settings.topic_prefix}.schemas"
    forged = {**REQUEST.schema, "fields": REQUEST.schema["fields"][:2]}
    for key, value in [
        (b"not-hex-at-all!!", b"{}"),
        (REQUEST.fingerprint.hex().encode(), json.dumps(forged).encode()),  # claims v2's id
        (b"00" * 8, b"\xff\xfe" * 100),
    ]:
        producer.produce(topic, value, key)
    unknown = b"\xc3\x01" + uuid.uuid4().bytes[:8] + b"\x0aforged"
    producer.produce(f"{settings.topic_prefix}.requests", unknown, b"forged")
    assert producer.flush(30) == 0


def dead_letters(settings: Any) -> list[dict[str, Any]]:
    """Everything on the dead-letter topic (read by assignment: no group join to wait for)."""
    topic = f"{settings.topic_prefix}.deadletter"
    consumer = Consumer(
        {
            "bootstrap.servers": settings.broker_url.removeprefix("kafka://"),
            "group.id": f"dl-{uuid.uuid4().hex[:6]}",
        }
    )
    records: list[dict[str, Any]] = []
    for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
        tp = TopicPartition(topic, partition, OFFSET_BEGINNING)
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        consumer.assign([tp])
        position = 0
        while position < high:
            for msg in consumer.consume(100, 1.0):
                if msg.error() is None:
                    records.append(DEAD_LETTER.decode(msg.value()))
                    position = (msg.offset() or 0) + 1
    consumer.close()
    return records


def test_rolling_upgrade_both_ways(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
        partitions=2,
        join_window_seconds=20.0,
        schema_lookup_wait_seconds=1.0,
        challengers=[{"name": "same", "callable": "tests.support.models:same", "concurrency": 32}],
    )
    create_topics(settings)
    plant_hostile_bytes(settings)
    old = {
        role: AgentProcess(settings, args, tmp_path, f"old-{role}", module=OLD)
        for role, args in ROLES.items()
    }
    new = {
        role: AgentProcess(settings, args, tmp_path, f"new-{role}") for role, args in ROLES.items()
    }
    tracer = TracerProvider().get_tracer("service")
    path = chdb_path(settings.clickhouse_url)
    assert path is not None
    assert settings_env(settings)  # the agents read exactly these settings

    def scalar(sql: str) -> Any:
        owner = live_owner(path)
        if owner is None:
            return None
        wh = RemoteWarehouse(settings.clickhouse_url, settings.clickhouse_database, owner)
        return wh.query(sql.format(db=settings.clickhouse_database)).scalar()

    def stored(n: int) -> bool:
        try:
            return (
                scalar("SELECT count() FROM {db}.comparisons FINAL WHERE is_late = 0") == n
                and scalar("SELECT count() FROM {db}.requests FINAL") == n
            )
        except Exception:
            return False

    def start(*processes: AgentProcess) -> None:
        for p in processes:
            p.start()
        for p in processes:
            p.wait_ready()

    async def scenario() -> dict[str, str]:
        traces: dict[str, str] = {}
        # 1. new SDK against old agents (and the old SDK beside it)
        start(*old.values())
        traces.update(new_sdk(settings, "new1", tracer))
        old_sdk(settings, "old1")
        await wait_for(lambda: stored(2 * N), 120, what="phase 1 stored")
        # 2. old and new routers and workers side by side in the same groups
        start(new["router"], new["worker"])
        traces.update(new_sdk(settings, "new2", tracer))
        old_sdk(settings, "old2")
        await wait_for(lambda: stored(4 * N), 120, what="phase 2 stored")
        # 3. the old agents leave: old SDK against new agents
        for role in ("router", "worker", "sink"):
            old[role].stop()
        start(new["sink"])
        traces.update(new_sdk(settings, "new3", tracer))
        old_sdk(settings, "old3")
        await wait_for(lambda: stored(6 * N), 120, what="phase 3 stored")
        return traces

    try:
        traces = asyncio.run(scenario())
        owner = live_owner(path)
        assert owner is not None
        wh = RemoteWarehouse(settings.clickhouse_url, settings.clickhouse_database, owner)
        db = settings.clickhouse_database
        outcomes = wh.query(
            f"SELECT outcome, countIf(diverged), count() FROM {db}.comparisons FINAL "
            "WHERE is_late = 0 GROUP BY outcome"
        ).rows
        assert outcomes == [("both_answered", 0, 6 * N)]
        requests = dict(wh.query(f"SELECT request_id, trace_id FROM {db}.requests FINAL").rows)
        comparisons = dict(
            wh.query(
                f"SELECT request_id, trace_id FROM {db}.comparisons FINAL WHERE is_late = 0"
            ).rows
        )
        for rid in requests:
            # the new field is stored where the reader knows it: new SDK -> new router/sink
            expected = traces[rid] if rid.startswith("new3") else ""
            assert requests[rid] == expected, rid
            assert comparisons[rid] == expected, rid
        letters = dead_letters(settings)
        assert sorted((d["stage"], d["reason"], d["original_key"]) for d in letters) == [
            ("router", "unknown_schema", b"forged"),
            ("sink", "unknown_schema", b"forged"),
        ]
        check_schemas_cli(settings, tmp_path)
    finally:
        for process in [*old.values(), *new.values()]:
            process.stop()


def check_schemas_cli(settings: Any, tmp_path: Path) -> None:
    """`shadow schemas` on the topic the upgrade left: both versions, checks, exit codes."""

    def shadow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shadowstream.cli", *args],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = shadow("schemas", "list")
    assert listed.returncode == 0, listed.stderr
    v1 = schema_fingerprint(load_history("request_event")[0]).hex()
    assert REQUEST.fingerprint.hex() in listed.stdout and v1 in listed.stdout
    assert "ignored 3 records" in listed.stdout  # the planted garbage
    good, bad, garbage = tmp_path / "good.avsc", tmp_path / "bad.avsc", tmp_path / "garbage.avsc"
    extra = {"name": "client_version", "type": ["null", "string"], "default": None}
    good.write_text(json.dumps({**REQUEST.schema, "fields": [*REQUEST.schema["fields"], extra]}))
    changed = [
        {**f, "type": "long"} if f["name"] == "payload" else f for f in REQUEST.schema["fields"]
    ]
    bad.write_text(json.dumps({**REQUEST.schema, "fields": changed}))
    garbage.write_text("{not json")
    assert shadow("schemas", "check", str(good)).returncode == 0
    refused = shadow("schemas", "check", str(bad))
    assert refused.returncode == 1 and "payload" in refused.stdout + refused.stderr
    unreadable = shadow("schemas", "check", str(garbage))
    assert unreadable.returncode == 3 and "Traceback" not in unreadable.stderr
