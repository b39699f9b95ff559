"""The pipeline end to end on real components: embedded broker, Faust app, chDB."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.harness import count, emit_traffic, start_pipeline, wait_for


def challenger(name: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "callable": f"tests.support.models:{fn}", "concurrency": 32, **extra}


def test_two_challengers_yield_exactly_one_comparison_per_request(make_settings: Any) -> None:
    settings = make_settings(
        challengers=[challenger("same", "same"), challenger("quarter", "different_quarter")]
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            emit_traffic(settings, 2000, champion_latency_ms=5.0)
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 4000, 120, what="4000 comparisons")
            await asyncio.sleep(2)  # nothing more may arrive
            assert count(wh) == 4000
            rows = wh.query(
                f"""SELECT challenger, count(), countIf(outcome = 'both_answered'),
                       countIf(diverged), min(latency_delta_ms), avg(latency_delta_ms),
                       groupUniqArrayArray(diff_paths), sum(challenger_tokens_out IS NULL)
                FROM {wh.database}.comparisons FINAL WHERE is_late = 0
                GROUP BY challenger ORDER BY challenger"""
            ).rows
            by_name = {r[0]: r for r in rows}
            same, quarter = by_name["same"], by_name["quarter"]
            assert same[1] == same[2] == 2000
            assert same[3] == 0
            assert quarter[1] == quarter[2] == 2000
            assert quarter[3] == 500  # every 4th request differs on $.b
            assert quarter[6] == ["$.b"]
            # the quarter challenger sleeps 30 ms; the champion reported 5 ms
            assert quarter[4] >= 20.0
            assert 20.0 <= quarter[5] < 200.0
            assert same[5] < quarter[5]

            # raw events landed as well (the sink stores a batch's comparisons first)
            def requests() -> int:
                sql = f"SELECT count() FROM {wh.database}.requests FINAL"
                return int(wh.query(sql).scalar() or 0)

            await wait_for(lambda: requests() >= 2000, 60, what="2000 requests stored")
            assert requests() == 2000
            # every request's champion usage is carried over
            assert (
                wh.query(
                    f"SELECT countIf(champion_tokens_in = 10) FROM {wh.database}.comparisons FINAL"
                ).scalar()
                == 4000
            )
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


def test_silent_challenger_becomes_challenger_missing_after_the_window(make_settings: Any) -> None:
    settings = make_settings(
        join_window_seconds=3.0,
        challengers=[
            challenger("same", "same"),
            challenger("mute", "never_answers", timeout_seconds=600),
            challenger("slowpoke", "hangs", timeout_seconds=1.0, concurrency=4),
        ],
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            emit_traffic(settings, 200)
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 600, 90, what="600 comparisons")
            rows = dict(
                (r[0], r[1:])
                for r in wh.query(
                    f"""SELECT challenger, count(), countIf(outcome = 'challenger_missing'),
                           groupUniqArray(challenger_status)
                    FROM {wh.database}.comparisons FINAL WHERE is_late = 0
                    GROUP BY challenger"""
                ).rows
            )
            assert rows["same"][0] == 200 and rows["same"][1] == 0
            # no answer at all: the window closes it as missing
            assert rows["mute"][0] == rows["mute"][1] == 200
            assert rows["mute"][2] == ["missing"]
            # answers that time out in the worker, or never come, are both failures
            assert rows["slowpoke"][0] == rows["slowpoke"][1] == 200
            assert set(rows["slowpoke"][2]) <= {"timeout", "missing"}
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("n", [300])
def test_champion_and_challenger_responses_share_a_partition(make_settings: Any, n: int) -> None:
    """SDK (librdkafka murmur2_random) and worker agree; and both agree with aiokafka/Faust."""
    from aiokafka.partitioner import DefaultPartitioner
    from confluent_kafka import Consumer

    settings = make_settings(challengers=[challenger("same", "same")])

    async def scenario() -> None:
        from shadowstream.pipeline.app import Roles

        pipeline = await start_pipeline(settings, Roles(router=True, challengers=["same"]))
        try:
            emit_traffic(settings, n)
            await asyncio.sleep(0)
            consumer = Consumer(
                {
                    "bootstrap.servers": settings.broker_url.removeprefix("kafka://"),
                    "group.id": f"check-{settings.topic_prefix}",
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": 6000,
                }
            )
            consumer.subscribe([f"{settings.topic_prefix}.responses"])
            from shadowstream.schemas import RESPONSE

            seen: dict[str, dict[str, int]] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while loop.time() < deadline and sum(len(v) == 2 for v in seen.values()) < n:
                for msg in await loop.run_in_executor(None, consumer.consume, 1000, 0.5):
                    if msg.error():
                        continue
                    event = RESPONSE.decode(msg.value())
                    seen.setdefault(event["request_id"], {})[event["role"]] = msg.partition()
            consumer.close()
            pairs = [v for v in seen.values() if len(v) == 2]
            assert len(pairs) == n
            assert all(v["champion"] == v["challenger"] for v in pairs)
            partitioner = DefaultPartitioner()
            for rid, sides in seen.items():
                expected = partitioner(rid.encode(), list(range(4)), list(range(4)))
                assert sides["champion"] == expected
        finally:
            await pipeline.stop()

    asyncio.run(scenario())
