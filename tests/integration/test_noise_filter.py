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

from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.core.config import Settings
from shadowstream.producers import ShadowEmitter
from shadowstream.stream_agents.comparison import build_comparison_builder
from shadowstream.stream_agents.router import RouterService
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.realistic_models import json_answer, text_answer

MODELS = "tests.support.realistic_models"
CONTROLS = ("control-a", "control-b")


@pytest.fixture(autouse=True)
def _pipeline_uses_the_full_builder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The runtime still builds comparisons without controls/noise/tool-call policies;
    # until it calls ComparisonBuilder.from_settings, route it there for these tests.
    monkeypatch.setattr(
        "shadowstream.pipeline.services.build_comparison_builder", build_comparison_builder
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


NOISE_B = {"$.request_uuid", "$.generated_at", "$.items[*].trace"}


def generic(paths: list[str]) -> set[str]:
    return {p.replace("[0]", "[*]").replace("[1]", "[*]") for p in paths}


def by_challenger(wh: Any, prefix: str) -> dict[str, tuple[Any, ...]]:
    """count, diverged, provisional (diverged left null), diff paths, ignored paths."""
    provisional = dict(
        rows(
            wh,
            f"""SELECT challenger, count() FROM {{db}}.comparison_provisional FINAL
                WHERE startsWith(request_id, '{prefix}-') GROUP BY challenger""",
        )
    )
    found = rows(
        wh,
        f"""SELECT challenger, count(), countIf(diverged), countIf(diverged IS NULL),
                  groupUniqArrayArray(diff_paths), groupUniqArrayArray(ignored_paths)
           FROM {{db}}.comparisons FINAL
           WHERE is_late = 0 AND startsWith(request_id, '{prefix}-')
           GROUP BY challenger""",
    )
    for r in found:  # every pair answered: a null verdict is a provisional one
        assert r[3] == provisional.get(r[0], 0), r
    return {r[0]: r[1:] for r in found}


def test_a_noisy_champion_learned_per_endpoint_survives_a_restart(
    make_settings: Callable[..., Settings],
) -> None:
    """The champion's JSON carries a random id, a timestamp and random per-item traces;
    no ignore paths are configured. Two endpoints, each with its own control: /a's
    tolerates a moving timestamp (abs_tol), /b's does not. Learned noise applies to
    every comparison of its endpoint, the control's own included; comparisons judged
    before the model is ready are provisional (left out of divergence), and after a
    restart the model is back before the first comparison."""
    plain = {"kind": "json"}
    settings = make_settings(
        noise={"min_rate": 0.5, "min_samples": 20},
        challengers=[
            challenger(
                "control-a",
                "control",
                control=True,
                endpoints=["/a"],
                comparator={"kind": "json", "options": {"abs_tol": 3600.0}},
            ),
            challenger("control-b", "control", control=True, endpoints=["/b"], comparator=plain),
            challenger("twin-b", "control", endpoints=["/b"], comparator=plain),
            challenger("candidate-b", "candidate", endpoints=["/b"], comparator=plain),
        ],
    )

    def answer(i: int) -> Any:
        return json_answer({"i": i})

    async def first_run() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            emit(settings, range(100), answer, "warm", "/b")
            emit(settings, range(40), answer, "side", "/a")
            await wait_for(lambda: count(wh) >= 340, 120, what="340 first-run comparisons")
            warm = by_challenger(wh, "warm")
            # the control's first comparisons waited for the model; after that, the
            # control's own comparisons leave the noise out: a floor of 0, not 100%
            total, diverged, provisional, _, ignored = warm["control-b"]
            assert total == 100 and diverged == 0 and provisional >= 19
            assert generic(ignored) == NOISE_B
            # an identical challenger never diverges: provisional or judged without noise
            total, diverged, provisional, _, _ = warm["twin-b"]
            assert total == 100 and diverged == 0
            router = pipeline.service(RouterService)[0]
            learned = router.builder.metrics()["noise"]
            # each endpoint learned with its own control's comparator: /a tolerates the
            # timestamp, so on /a it is not noise
            assert set(learned["shop /b"]["noisy"]) == NOISE_B
            assert set(learned["shop /a"]["noisy"]) == {"$.request_uuid", "$.items[*].trace"}
            report = build_report(Scope(wh, TimeRange()), ReportOptions(controls=CONTROLS))
            rows_ = {r.challenger: r for r in report.challengers}
            assert rows_["control-b"].provisional == warm["control-b"][2] >= 19
            assert rows_["twin-b"].divergence.n == 100 - rows_["twin-b"].provisional
            assert rows_["twin-b"].control == "control-b"
        finally:
            await pipeline.stop()

    async def after_restart() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            router = pipeline.service(RouterService)[0]
            assert router.counters["restored_noise_scopes"] == 2
            emit(settings, range(100), answer, "after", "/b")
            await wait_for(
                lambda: count(wh, "startsWith(request_id, 'after-')") >= 300,
                120,
                what="300 comparisons after the restart",
            )
            after = by_challenger(wh, "after")
            assert after["twin-b"][:3] == (100, 0, 0)  # judged at once: nothing provisional
            assert after["control-b"][:3] == (100, 0, 0)
            total, diverged, provisional, diff_paths, ignored = after["candidate-b"]
            assert (total, diverged, provisional) == (100, 25, 0)  # its one real change
            assert diff_paths == ["$.label"] and generic(ignored) == NOISE_B
        finally:
            await pipeline.stop()

    asyncio.run(first_run())
    asyncio.run(after_restart())


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
