"""The LLM judge on the real pipeline, against a stand-in OpenAI-compatible chat server.

The judge is driven through the official ``openai`` client by the judge agent;
the stand-in (tests/support/llm_server.py) answers as a judge would
(tests/support/llm_models.py: prefers the more useful answer, a tie for a
rewording, always "A" for position-biased questions, no verdict at all for
"garbage" ones).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.core.config import kafka_client_config
from shadowstream.core.topics import TopicNames
from shadowstream.producers import ShadowEmitter
from shadowstream.stream_agents.judge.cache import VerdictCache, restore
from shadowstream.warehouse.client import Warehouse
from tests.support import llm_models
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.llm_server import LLMServer

KEY_ENV = "JUDGE_TEST_API_KEY"


def judge_challenger(name: str, server: LLMServer, **judge: Any) -> dict[str, Any]:
    options = {
        "model": f"judge-{name}",
        "base_url": server.openai_url,
        "api_key_env": KEY_ENV,
        "rubric": "The answer that is correct and more useful wins.",
        "retries": 1,
        "cost_per_1k_tokens_in": 0.15,
        "cost_per_1k_tokens_out": 0.6,
        **judge,
    }
    return {
        "name": name,
        "callable": "tests.support.llm_models:challenger",
        "concurrency": 16,
        "comparator": {
            "kind": "cascade",
            "options": {
                "steps": [
                    {"kind": "exact", "decide": "agree"},
                    {"kind": "judge", "options": options},
                ]
            },
        },
    }


def emit(settings: Any, ids: range, prefix: str) -> None:
    emitter = ShadowEmitter(settings.broker_url, service="qa", topic_prefix=settings.topic_prefix)
    for i in ids:
        payload = llm_models.question(i)
        emitter.emit_request(f"{prefix}-{i}", "/v1/answer", payload)
        emitter.emit_response(f"{prefix}-{i}", llm_models.champion_answer(payload), 20.0)
    assert emitter.flush(30) == 0
    emitter.close()


def verdicts(wh: Warehouse, prefix: str, challenger: str) -> dict[str, tuple[Any, Any]]:
    rows = wh.query(
        f"""SELECT request_id, judge_verdict, judge_rationale FROM {wh.database}.comparisons FINAL
        WHERE is_late = 0 AND challenger = {{c:String}} AND startsWith(request_id, {{p:String}})""",
        {"c": challenger, "p": prefix + "-"},
    ).rows
    return {str(r[0]): (r[1], r[2]) for r in rows}


def judge_calls(server: LLMServer, model: str) -> list[str]:
    with server.lock:
        return [c["messages"][-1]["content"] for c in server.chat_calls if c["model"] == model]


@pytest.mark.timeout(600)
def test_judge_verdicts_orders_cache_and_budget(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 36  # 6 of each kind
    with LLMServer(chat=llm_models.judge) as server:
        monkeypatch.setenv(KEY_ENV, server.api_key)
        settings = make_settings(
            challengers=[
                judge_challenger("llm", server),
                # a budget of one token per hour: the first pair is judged, then no more (the
                # pairs taken while it is in flight count as reserved, unpriced: skipped too)
                judge_challenger("capped", server, budget={"tokens_per_hour": 1}),
            ],
            join_window_seconds=10.0,
        )

        async def scenario() -> None:
            pipeline = await start_pipeline(settings)
            wh = pipeline.warehouse
            try:
                emit(settings, range(n), "q")
                judged = (
                    "challenger = 'llm' AND judge_verdict IS NOT NULL AND request_id LIKE 'q-%'"
                )
                await wait_for(lambda: count(wh, judged) >= 30, 240, what="30 judged pairs")
                capped = "challenger = 'capped' AND judge_verdict IS NOT NULL"
                await wait_for(lambda: count(wh, capped) >= 30, 120, what="capped pairs")
                first = verdicts(wh, "q", "llm")
                assert len(first) == n
                by_kind: dict[str, set[Any]] = {}
                for rid, (verdict, _) in first.items():
                    kind = llm_models.question(int(rid.split("-")[1]))["kind"]
                    by_kind.setdefault(kind, set()).add(verdict)
                assert by_kind == {
                    "same": {None},  # decided by the exact step: never asked
                    "better": {"better"},
                    "worse": {"worse"},
                    "reworded": {"same"},
                    "biased": {"undecided"},  # the two orders disagree
                    "garbage": {"error"},  # malformed in every attempt
                }
                rationale = {v: r for v, r in first.values() if v}
                assert rationale["better"] == "B is more useful."  # from the champion-first order
                assert "disagree" in rationale["undecided"]
                assert "malformed" in rationale["error"]
                prompts = judge_calls(server, "judge-llm")
                assert not [p for p in prompts if "(same)" in p]
                # both orders per pair; garbage: both orders, each tried twice (retries = 1)
                assert len(prompts) == 24 * 2 + 6 * 4
                # the champion's answer is shown first in one call and second in the other
                better = [p for p in prompts if "country 1? (better)" in p]
                assert len(better) == 2
                assert better[0].index("detail") != better[1].index("detail")

                # a replay of the same traffic (same inputs, same answers): from the cache;
                # only the failures (not cached) are asked again
                emit(settings, range(n), "replay")
                judged_again = judged.replace("q-%", "replay-%")
                await wait_for(lambda: count(wh, judged_again) >= 30, 240, what="replay judged")
                again = verdicts(wh, "replay", "llm")
                assert {k.split("-")[1]: v[0] for k, v in again.items()} == {
                    k.split("-")[1]: v[0] for k, v in first.items()
                }
                assert len(judge_calls(server, "judge-llm")) == len(prompts) + 6 * 4

                # the cache is on Kafka too: a judge agent starting now reads it back
                cache = VerdictCache(1_000)
                topic = TopicNames(settings.topic_prefix).judge_cache
                restored = restore(cache, kafka_client_config(settings), topic)
                assert restored >= 24 and len(cache) >= 24  # the first round's considered ones

                # the budget: a pair or two judged, the rest skipped (not judged, not paid)
                capped_rows = verdicts(wh, "q", "capped")
                skipped = [r for v, r in capped_rows.values() if v == "skipped"]
                assert len(skipped) == 29 and all("budget" in r for r in skipped)  # one judged
                assert len(judge_calls(server, "judge-capped")) <= 4

                # the report: judge verdicts with intervals beside divergence
                report = build_report(Scope(wh, TimeRange()), ReportOptions(challengers=("llm",)))
                (summary,) = [j for j in report.judge if j.challenger == "llm"]
                assert summary.judged == 48 and summary.errors == 12  # two rounds of 24 + 6
                assert (summary.better.k, summary.same.k, summary.worse.k) == (12, 12, 12)
                assert summary.undecided.k == 12
                low, high = summary.better.low, summary.better.high
                assert low is not None and high is not None and low < 0.25 < high
                stored = wh.query(
                    f"SELECT count() FROM {wh.database}.comparison_judgements FINAL "
                    "WHERE challenger = 'llm'"
                ).scalar()
                assert stored == 60
                # the divergence rollups count each comparison once: the judged copy
                # does not add a second row
                llm = next(c for c in report.challengers if c.challenger == "llm")
                assert llm.comparisons == 2 * n
            finally:
                await pipeline.stop()

        asyncio.run(scenario())
