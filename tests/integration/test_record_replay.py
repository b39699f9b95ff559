"""Agent challengers get the champion's tool calls and results (record-replay)."""

from __future__ import annotations

import asyncio
from typing import Any

from shadowstream.producers import ShadowEmitter
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.models import champion_output


def test_challenger_receives_the_champions_tool_trace(make_settings: Any) -> None:
    settings = make_settings(
        challengers=[
            {
                "name": "agent",
                "callable": "tests.support.models:replays_tools",
                "replay_tools": True,
                "comparator": {"kind": "json", "options": {"ignore_paths": ["$.tools_seen"]}},
            }
        ]
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            emitter = ShadowEmitter(
                settings.broker_url, service="agent-svc", topic_prefix=settings.topic_prefix
            )
            for i in range(100):
                rid = f"r{i}"
                trace = [
                    {"name": "search", "arguments": {"q": f"order {i}"}, "result": {"hits": i}},
                    {"name": "lookup", "arguments": {"id": i}, "result": "shipped"},
                ][: 1 + i % 2]
                if i % 2:  # either side first
                    emitter.emit_response(
                        rid, champion_output({"i": i}), 5.0, tool_trace=trace, tool_calls=len(trace)
                    )
                    emitter.emit_request(rid, "/agent", {"i": i})
                else:
                    emitter.emit_request(rid, "/agent", {"i": i})
                    emitter.emit_response(
                        rid, champion_output({"i": i}), 5.0, tool_trace=trace, tool_calls=len(trace)
                    )
            emitter.close(10)
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 100, 60, what="100 comparisons")
            db = wh.database
            rows = wh.query(
                f"""SELECT countIf(outcome = 'both_answered'), countIf(diverged),
                       countIf(challenger_tool_calls = champion_tool_calls)
                FROM {db}.comparisons FINAL WHERE is_late = 0"""
            ).rows[0]
            assert rows == (100, 0, 100)
            # the sink stores a batch's comparisons before its raw events
            answers = f"SELECT count() FROM {db}.responses FINAL WHERE role = 'challenger'"
            await wait_for(
                lambda: int(wh.query(answers).scalar() or 0) >= 100, 60, what="challenger answers"
            )
            seen = wh.query(
                f"""SELECT count() FROM {db}.responses FINAL
                WHERE role = 'challenger' AND JSONLength(output, 'tools_seen') = 1 + toUInt32(
                    substring(request_id, 2)) % 2"""
            ).scalar()
            assert seen == 100
            assert pipeline.metrics()["router"]["replayed_tool_traces"] == 100
        finally:
            await pipeline.stop()

    asyncio.run(scenario())
