"""Poison pills through the real pipeline: boundary values, forged varints, huge and
nested payloads, impossible timestamps; and rows only ClickHouse refuses.

The router runs as a real process (it is what crashed on one event); the
challenger worker and the sink run in this process, on the session's broker
and chDB.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from shadowstream.pipeline.app import Roles
from shadowstream.pipeline.processes import AgentProcess
from shadowstream.schemas import REQUEST, RESPONSE
from shadowstream.schemas.fastcodec import zz
from tests.integration.test_bad_input import read_deadletters
from tests.support.harness import count, emit_traffic, start_pipeline, wait_for

MIB = 1 << 20
TARGETS = "shadow.challengers"  # the header naming a batch request's challengers
DAY_US = 86_400 * 1_000_000
SENTINEL = 123_456_789  # a value whose varint is patched into a forged one


def now_us() -> int:
    return time.time_ns() // 1000


def request(rid: str, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": rid,
        "timestamp_us": now_us(),
        "service": "svc",
        "endpoint": "/predict",
        "champion_model": "champion-v1",
        "payload": '{"i": 1}',
        "attributes": {"case": rid},
        "experiment_id": "live",
        **fields,
    }


def champion(rid: str, usage: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": rid,
        "timestamp_us": now_us(),
        "role": "champion",
        "challenger": "",
        "model": "champion-v1",
        "output": '{"i": 1}',
        "latency_ms": 5.0,
        "status": "ok",
        "error": None,
        "usage": {"tokens_in": 1, "tokens_out": 1, "tool_calls": 0, "cost": 0.5, **(usage or {})},
        "tool_trace": None,
        "experiment_id": "live",
        **fields,
    }


def forged(encoded: bytes, raw_varint: bytes) -> bytes:
    """``encoded`` with the sentinel's varint replaced by bytes no compliant writer makes."""
    mark = zz(SENTINEL)
    assert encoded.count(mark) == 1
    return encoded.replace(mark, raw_varint)


def past_64_bits() -> bytes:
    return b"\xff" * 9 + b"\x02"  # 2**63 and up: a tenth byte with bits past 64


def overlong(value: int) -> bytes:
    body = bytearray(zz(value))
    body[-1] |= 0x80
    return bytes(body) + b"\x80\x00"


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def cases() -> tuple[dict[str, tuple[bytes, bytes]], dict[str, tuple[str, str]]]:
    """(rid -> (request bytes, champion bytes)), (rid -> (bad side, reason)).

    ``b-header`` goes to the batch-requests topic with a ``shadow.challengers`` header
    that is not UTF-8: only the router reads headers, so only it refuses the message.
    """
    good: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "g-long-min": ({}, {"usage": {"tokens_in": -(2**63), "tokens_out": -(2**63)}}),
        "g-long-max": ({}, {"usage": {"tokens_in": 2**63 - 1, "tokens_out": 2**63 - 1}}),
        "g-int-min": ({}, {"usage": {"tool_calls": -(2**31)}}),
        "g-int-max": ({}, {"usage": {"tool_calls": 2**31 - 1}}),
        "g-nan": ({}, {"latency_ms": math.nan, "usage": {"cost": math.nan}}),
        "g-inf": ({}, {"latency_ms": math.inf, "usage": {"cost": math.inf}}),
        "g-ninf": ({}, {"latency_ms": -math.inf, "usage": {"cost": -math.inf}}),
        "g-dbl-edge": ({}, {"latency_ms": 1.7976931348623157e308, "usage": {"cost": -5e-324}}),
        "g-empty": (
            {"service": "", "endpoint": "", "champion_model": "", "payload": "", "attributes": {}},
            {"model": "", "output": "", "error": "", "tool_trace": ""},
        ),
        "g-nested-deep": ({"payload": nested(20_000)}, {"output": nested(20_000, "2")}),
        "g-nested-900": ({"payload": nested(900)}, {"output": nested(900, "2"), "tool_trace": nested(900)}),
        "g-big": ({"payload": '"' + "x" * 900_000 + '"'}, {"output": '"' + "y" * 900_000 + '"'}),
        "g-window-edges": (
            {"timestamp_us": now_us() - 3640 * DAY_US},
            {"timestamp_us": now_us() + 3_600 * 1_000_000},
        ),
    }  # fmt: skip
    # 110 months of history: their rows span more partitions (months) than ClickHouse
    # takes in one insert, so it refuses the batch although every row is fine
    for k in range(110):
        at = now_us() - k * 31 * DAY_US
        good[f"g-history-{k}"] = (
            {"timestamp_us": at, "payload": f'{{"i": {k}}}'},
            {"timestamp_us": at},
        )
    out = {
        rid: (REQUEST.encode(request(rid, **r)), RESPONSE.encode(champion(rid, **c)))
        for rid, (r, c) in good.items()
    }
    bad: dict[str, tuple[str, str]] = {}

    def bad_request(rid: str, data: bytes, reason: str) -> None:
        out[rid] = (data, RESPONSE.encode(champion(rid)))
        bad[rid] = ("request", reason)

    def bad_champion(rid: str, data: bytes, reason: str) -> None:
        out[rid] = (REQUEST.encode(request(rid)), data)
        bad[rid] = ("champion", reason)

    bad_request("b-ts-0", REQUEST.encode(request("b-ts-0", timestamp_us=0)), "bad_timestamp")
    bad_request(
        "b-ts-max", REQUEST.encode(request("b-ts-max", timestamp_us=2**63 - 1)), "bad_timestamp"
    )
    bad_request(
        "b-ts-min", REQUEST.encode(request("b-ts-min", timestamp_us=-(2**63))), "bad_timestamp"
    )
    sentinel_request = REQUEST.encode(request("b-ts-past", timestamp_us=SENTINEL))
    bad_request("b-ts-past", forged(sentinel_request, past_64_bits()), "invalid")
    sentinel_request = REQUEST.encode(request("b-overlong", timestamp_us=SENTINEL))
    bad_request("b-overlong", forged(sentinel_request, overlong(now_us())), "invalid")
    bad_request("b-1mb", REQUEST.encode(request("b-1mb", payload="z" * MIB)), "oversized")
    header_request = request("b-header", experiment_id="exp-poison")
    bad_request("b-header", REQUEST.encode(header_request), "processing_failed")
    for rid, usage, raw in [
        ("c-int-past", {"tool_calls": SENTINEL}, zz(2**31)),  # the issue's poison pill
        ("c-int-past-min", {"tool_calls": SENTINEL}, zz(-(2**31) - 1)),
        ("c-long-past", {"tokens_in": SENTINEL}, past_64_bits()),
    ]:
        bad_champion(rid, forged(RESPONSE.encode(champion(rid, usage)), raw), "invalid")
    bad_champion("c-ts-0", RESPONSE.encode(champion("c-ts-0", timestamp_us=0)), "bad_timestamp")
    bad_champion("c-1mb", RESPONSE.encode(champion("c-1mb", output="o" * MIB)), "oversized")
    return out, bad  # fmt: skip


def test_boundary_values_through_the_real_pipeline(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(
        retention_days=3650,
        challengers=[{"name": "echo", "callable": "tests.support.models:echo", "concurrency": 16}],
    )
    router = AgentProcess(settings, ["worker", "router"], tmp_path, "router")
    events, bad = cases()
    prefix = settings.topic_prefix
    bootstrap = settings.broker_url.removeprefix("kafka://")

    async def scenario() -> None:
        pipeline = await start_pipeline(settings, Roles(challengers=["echo"], sink=True))
        try:
            router.start()
            router.wait_ready()
            producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4 * MIB})
            for rid, (req, resp) in events.items():
                if rid == "b-header":
                    topic, headers = f"{prefix}.batch.requests", [(TARGETS, b"\xff\xfeecho")]
                else:
                    topic, headers = f"{prefix}.requests", []
                producer.produce(topic, req, rid.encode(), headers=headers)
                producer.produce(f"{prefix}.responses", resp, rid.encode())
                producer.poll(0)
            assert producer.flush(60) == 0
            compared = [rid for rid in events if bad.get(rid, ("",))[0] != "request"]
            wh = pipeline.warehouse
            expected = len(compared)
            await wait_for(lambda: count(wh) >= expected, 180, what=f"{expected} comparisons")
            # the pipeline still flows: ordinary traffic after the poison is compared
            emit_traffic(settings, 200, prefix="after")
            await wait_for(lambda: count(wh) >= expected + 200, 120, what="traffic after")
            n_dead = 2 * len(bad) - 1  # the router and the sink (raw events) each refuse them
            dead = await read_deadletters(bootstrap, prefix, expected=n_dead)
            await asyncio.sleep(1)
            check_outcome(wh, events, bad, dead, expected)
            assert router.proc is not None and router.proc.poll() is None, router.tail()
            assert router.healthz()
            assert all(s.failure is None for s in pipeline.services)
            sink = pipeline.metrics()["sink"]
            assert sink["paused"] is False
            print(
                f"\n{len(events)} requests, {len(bad)} poisoned: {expected} compared once each, "
                f"{n_dead} dead letters; sink isolated {sink['isolated_batches']} batches "
                f"in {sink['isolation_inserts']} inserts"
            )
        finally:
            router.stop()
            await pipeline.stop()

    asyncio.run(scenario())


def check_outcome(
    wh: Any,
    events: dict[str, tuple[bytes, bytes]],
    bad: dict[str, tuple[str, str]],
    dead: list[dict[str, Any]],
    expected: int,
) -> None:
    db = wh.database
    rows = wh.query(
        f"SELECT request_id, count(), any(outcome) FROM {db}.comparisons FINAL "
        "WHERE is_late = 0 AND NOT startsWith(request_id, 'after') GROUP BY request_id"
    ).rows
    per_request = {rid: (n, outcome) for rid, n, outcome in rows}
    for rid in events:
        side = bad.get(rid, ("", ""))[0]
        if side == "request":
            assert rid not in per_request, rid
        elif side == "champion":
            assert per_request.get(rid) == (1, "champion_missing"), rid
        else:
            assert per_request.get(rid) == (1, "both_answered"), (rid, per_request.get(rid))
    assert sum(n for n, _ in per_request.values()) == expected
    assert count(wh, "startsWith(request_id, 'after')") == 200

    # every bad message is dead-lettered once by the router and once by the sink, with
    # its reason and its original bytes (an oversized one: as much as a message holds)
    got = Counter((d["stage"], d["reason"], d["original_key"]) for d in dead)
    want = Counter(
        (stage, reason, rid.encode())
        for rid, (_, reason) in bad.items()
        for stage in (("router",) if rid == "b-header" else ("router", "sink"))
    )
    assert got == want, (got - want, want - got)
    for d in dead:
        rid = d["original_key"].decode()
        side, reason = bad[rid]
        original = events[rid][0 if side == "request" else 1]
        assert d["source_topic"].endswith("requests" if side == "request" else "responses")
        assert d["detail"]
        if reason == "oversized":
            assert (
                original.startswith(d["original_value"]) and len(d["original_value"]) >= 1_000_000
            )
        else:
            assert d["original_value"] == original

    # raw events: what was refused is not stored, the rest is, once
    raw = dict(
        wh.query(f"SELECT request_id, count() FROM {db}.requests FINAL GROUP BY request_id").rows
    )
    for rid in events:
        refused = bad.get(rid, ("",))[0] == "request" and rid != "b-header"
        assert raw.get(rid, 0) == (0 if refused else 1), rid
    answers = dict(
        wh.query(
            f"SELECT request_id, count() FROM {db}.responses FINAL WHERE role = 'champion' "
            "GROUP BY request_id"
        ).rows
    )
    for rid in events:
        assert answers.get(rid, 0) == (0 if bad.get(rid, ("",))[0] == "champion" else 1), rid
    # the comparison of the extreme values kept them as they were
    edges = wh.query(
        f"SELECT request_id, champion_tokens_in, champion_tool_calls FROM {db}.comparisons FINAL "
        "WHERE request_id IN ('g-long-min', 'g-long-max', 'g-int-min', 'g-int-max') ORDER BY 1"
    ).rows
    assert edges == [
        ("g-int-max", 1, 2**31 - 1),
        ("g-int-min", 1, -(2**31)),
        ("g-long-max", 2**63 - 1, 0),
        ("g-long-min", -(2**63), 0),
    ]


def test_rows_only_clickhouse_refuses_are_found_and_the_rest_stored(
    chdb_url: str, unique: str
) -> None:
    """Real chDB, the sink's isolation: rows ClickHouse refuses on their own (here an
    Avro int past 32 bits, with the codec check switched off, as for a refusal our codec
    does not foresee) are set aside with ClickHouse's message; rows it refuses only
    together (too many partitions in one insert) are all stored."""
    from shadowstream.sinks.clickhouse.isolation import RowIsolation
    from shadowstream.sinks.clickhouse.migrations import migrate
    from shadowstream.warehouse.client import connect

    wh = connect(chdb_url, f"t_{unique}")
    migrate(wh, 3650)
    header = 10
    bodies = []
    for i in range(400):
        at = now_us() - (i % 110) * 31 * DAY_US  # 110 months: refused together
        bodies.append(RESPONSE.encode(champion(f"r{i}", timestamp_us=at))[header:])
    poisoned = {17, 18, 250, 399}
    for i in poisoned:
        data = RESPONSE.encode(champion(f"r{i}", {"tool_calls": SENTINEL}))
        bodies[i] = forged(data, zz(2**31))[header:]

    def insert(part: list[bytes]) -> None:
        wh.insert_avro("responses_in", RESPONSE.schema, part)

    isolation = RowIsolation(bodies, insert, lambda body: None)
    isolation.run()
    assert {i for i, _, _ in isolation.rejected} == poisoned
    for _, reason, detail in isolation.rejected:
        assert reason == "clickhouse_rejected"
        assert "Value out of range for Avro int: 2147483648" in detail
    stored = wh.query(f"SELECT count() FROM {wh.database}.responses FINAL").scalar()
    assert stored == 400 - len(poisoned) == len(isolation.stored)
    print(f"\n400 rows, 4 refused by ClickHouse: found in {isolation.inserts} inserts")
