"""Divergence on real components that reflects real differences only.

Embedded broker, the in-process pipeline (router, challenger workers, sink) and
chDB. The champion's JSON answers carry a random id, a timestamp and random
per-item traces; a ``control`` challenger re-runs the champion, the noise
learner finds those fields, and the candidate's divergence is left with its
one real change. Free text is judged by similarity, and a challenger over its
token budget is skipped ("not sampled (budget)"), never failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shadowstream.core.config import Settings
from shadowstream.producers import ShadowEmitter
from shadowstream.stream_agents.comparison import build_comparison_builder
from shadowstream.stream_agents.router import RouterService
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.realistic_models import json_answer, text_answer

MODELS = "tests.support.realistic_models"


@pytest.fixture(autouse=True)
def _pipeline_uses_the_full_builder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The runtime still builds comparisons without controls/noise/tool-call policies;
    # until it calls ComparisonBuilder.from_settings, route it there for these tests.
    monkeypatch.setattr(
        "shadowstream.pipeline.app.build_comparison_builder", build_comparison_builder
    )
    monkeypatch.chdir(tmp_path)  # Faust's data directory lands here, not in the repository


def challenger(name: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "callable": f"{MODELS}:{fn}",
        "concurrency": 32,
        "timeout_seconds": 5,
        **extra,
    }


def emit(
    settings: Settings,
    ids: range,
    answer: Callable[[int], Any],
    prefix: str,
    endpoint: str,
    pace_s: float = 0.0,
) -> None:
    emitter = ShadowEmitter(settings.broker_url, service="shop", topic_prefix=settings.topic_prefix)
    try:
        for i in ids:
            rid = f"{prefix}-{i}"
            emitter.emit_request(rid, endpoint, {"i": i})
            emitter.emit_response(rid, answer(i), 5.0, tokens_in=40, tokens_out=20)
            if pace_s:
                emitter.flush(5)
                time.sleep(pace_s)
        assert emitter.flush(30) == 0
        assert emitter.stats().dropped == 0
    finally:
        emitter.close()


def rows(wh: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in wh.query(sql.format(db=wh.database)).rows]


def test_noise_filter_removes_fields_that_differ_on_every_champion_call(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        noise={"min_rate": 0.5, "min_samples": 20},
        challengers=[
            challenger("control", "control", control=True),
            challenger("candidate", "candidate"),
        ],
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            # warm-up: the control's first comparisons teach the learner
            emit(settings, range(60), lambda i: json_answer({"i": i}), "warm", "/classify")
            await wait_for(lambda: count(wh) >= 120, 90, what="120 warm-up comparisons")
            emit(settings, range(200), lambda i: json_answer({"i": i}), "req", "/classify")
            await wait_for(
                lambda: count(wh, "startsWith(request_id, 'req-')") >= 400,
                90,
                what="400 comparisons",
            )
            result = {
                r[0]: r[1:]
                for r in rows(
                    wh,
                    """SELECT challenger, count(), countIf(diverged),
                              groupUniqArrayArray(diff_paths), groupUniqArrayArray(ignored_paths)
                       FROM {db}.comparisons FINAL
                       WHERE is_late = 0 AND startsWith(request_id, 'req-')
                       GROUP BY challenger""",
                )
            }
            noise = {"$.request_uuid", "$.generated_at", "$.items[*].trace"}
            # the control (champion vs champion) shows the raw noise floor: every call differs
            total, diverged, diff_paths, ignored = result["control"]
            assert total == 200 and diverged == 200 and ignored == []
            assert {p.replace("[0]", "[*]").replace("[1]", "[*]") for p in diff_paths} == noise
            # the candidate: only the real change is left (label on every 4th request)
            total, diverged, diff_paths, ignored = result["candidate"]
            assert total == 200
            assert diverged == 50
            assert diff_paths == ["$.label"]
            assert set(ignored) == noise
            example = rows(
                wh,
                """SELECT diverged, diff_summary FROM {db}.comparisons FINAL
                   WHERE challenger = 'candidate' AND request_id = 'req-1'""",
            )[0]
            assert example[0] is False and "(noise)" in example[1]
            router = pipeline.service(RouterService)[0]
            learned = router.builder.metrics()["noise"]["shop /classify"]
            assert set(learned["noisy"]) == noise and learned["samples"] >= 260
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


def test_free_text_and_an_over_budget_challenger(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        challengers=[
            challenger(
                "paraphraser",
                "paraphraser",
                comparator={
                    "kind": "text",
                    "options": {"method": "token_set_ratio", "threshold": 0.75},
                },
            ),
            challenger(
                "expensive",
                "expensive",
                budget={"tokens_per_hour": 10_000},  # ten answers of 1000 tokens
                comparator={
                    "kind": "json",
                    "options": {"ignore_paths": ["request_uuid", "generated_at", "items[*].trace"]},
                },
                endpoints=["/classify"],
            ),
        ],
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            emit(settings, range(100), text_answer, "chat", "/chat")
            # live traffic arrives over time (here 20 requests/s, in a thread so the
            # pipeline keeps running): answers come back and price the budget
            await asyncio.get_running_loop().run_in_executor(
                None,
                emit,
                settings,
                range(100),
                lambda i: json_answer({"i": i}),
                "cls",
                "/classify",
                0.05,
            )
            await wait_for(
                lambda: count(wh, "challenger = 'paraphraser'") >= 200,
                90,
                what="200 paraphraser comparisons",
            )
            router = pipeline.service(RouterService)[0]
            await wait_for(
                lambda: (
                    router.fanout.counters["expensive"].sampled
                    == count(wh, "challenger = 'expensive'")
                ),
                30,
                what="every expensive request compared",
            )
            text = {
                r[0]: r[1:]
                for r in rows(
                    wh,
                    """SELECT endpoint, count(), countIf(diverged)
                       FROM {db}.comparisons FINAL
                       WHERE is_late = 0 AND challenger = 'paraphraser' GROUP BY endpoint""",
                )
            }
            # paraphrases agree; the wrong answer on every 5th chat request diverges
            assert text["/chat"] == (100, 20)
            counters = router.fanout.counters["expensive"]
            assert counters.not_sampled_endpoint == 100  # never sent /chat
            # over budget: skipped and counted, not failed
            assert 10 <= counters.sampled <= 11
            assert counters.not_sampled_budget == 100 - counters.sampled
            outcomes = rows(
                wh,
                """SELECT outcome, challenger_status, countIf(diverged), count()
                   FROM {db}.comparisons FINAL
                   WHERE is_late = 0 AND challenger = 'expensive'
                   GROUP BY outcome, challenger_status""",
            )
            assert outcomes == [("both_answered", "ok", 0, counters.sampled)]
        finally:
            await pipeline.stop()

    asyncio.run(scenario())
