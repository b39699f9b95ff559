"""The judge's reading of answers, the two orders, the cache key, and where pairs go."""

from __future__ import annotations

from typing import Any

import pytest

from shadowstream.core.config import JudgeSpec, load_settings
from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators import build_comparator
from shadowstream.stream_agents.comparison import ComparisonBuilder
from shadowstream.stream_agents.judge.cache import VerdictCache
from shadowstream.stream_agents.judge.prompt import (
    MalformedAnswer,
    OrderVerdict,
    cache_key,
    combine,
    messages,
    parse_answer,
)

SPEC = JudgeSpec(model="judge-1", rubric="Correct capitals win.", max_chars=200)


@pytest.mark.parametrize(
    ("text", "winner", "why"),
    [
        ('{"verdict": "A", "rationale": "A is right."}', "A", "A is right."),
        ('```json\n{"verdict": "b", "rationale": "B"}\n```', "B", "B"),
        ('Sure! {"Verdict": "Tie", "reason": "same"} Hope that helps.', "tie", "same"),
        ('{"winner": "Answer A"}', "A", ""),
        ("tie", "tie", ""),
        ("B.", "B", ""),
        ('{"verdict": "equal", "rationale": "  both\\n fine "}', "tie", "both fine"),
    ],
)
def test_answers_are_read_tolerantly(text: str, winner: str, why: str) -> None:
    assert parse_answer(text) == OrderVerdict(winner, why)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "Both answers have their merits.",
        '{"rationale": "no verdict here"}',
        '{"verdict": "C"}',
        '{"verdict": "A" "rationale": broken',
        "[1, 2, 3]",
    ],
)
def test_malformed_answers_are_refused(text: str | None) -> None:
    with pytest.raises(MalformedAnswer):
        parse_answer(text)


def test_both_orders_must_agree() -> None:
    # champion shown first: B (the challenger) wins; challenger first: A (the challenger) wins
    assert combine(OrderVerdict("B", "more detail"), OrderVerdict("A", "x"))[0] == "better"
    assert combine(OrderVerdict("A", "wrong"), OrderVerdict("B", "wrong"))[0] == "worse"
    assert combine(OrderVerdict("tie", ""), OrderVerdict("tie", "same"))[0] == "same"
    verdict, why = combine(OrderVerdict("A", "first"), OrderVerdict("A", "first again"))
    assert verdict == "undecided"  # always the first position: order bias
    assert "disagree" in why and "worse" in why and "better" in why
    assert combine(OrderVerdict("tie", ""), OrderVerdict("A", ""))[0] == "undecided"


def test_prompt_clips_and_places_answers() -> None:
    system, user = messages(SPEC, "q" * 500, "first answer", "second answer")
    assert "Correct capitals win." in system["content"]
    assert user["content"].index("first answer") < user["content"].index("second answer")
    assert "q" * 199 + "…" in user["content"] and "q" * 201 not in user["content"]


def test_cache_key_covers_judge_rubric_input_and_answers() -> None:
    base = cache_key(SPEC, "in", "a", "b")
    assert base == cache_key(SPEC, "in", "a", "b")
    other_rubric = SPEC.model_copy(update={"rubric": "Shorter wins."})
    keys = {
        base,
        cache_key(SPEC, "in", "b", "a"),
        cache_key(SPEC, "in2", "a", "b"),
        cache_key(other_rubric, "in", "a", "b"),
        cache_key(SPEC, "i", "na", "b"),  # no ambiguity from concatenation
    }
    assert len(keys) == 5


def test_verdict_cache_is_bounded_lru() -> None:
    cache = VerdictCache(2)
    cache.put("a", "better", "")
    cache.put("b", "same", "")
    assert cache.get("a") == ("better", "")  # a is now the most recent
    cache.put("c", "worse", "")
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2


def _cascade(**judge: Any) -> dict[str, Any]:
    return {
        "kind": "cascade",
        "options": {
            "steps": [
                {"kind": "exact", "decide": "agree"},
                {"kind": "judge", "options": {"model": "m", **judge}},
            ]
        },
    }


def test_the_judge_must_be_the_last_step_and_its_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="last"):
        build_comparator(
            "cascade", {"steps": [{"kind": "judge", "options": {"model": "m"}}, "exact"]}
        )
    with pytest.raises(ConfigError, match="temperature"):
        build_comparator("judge", {"model": "m", "temperature": 9})
    with pytest.raises(ConfigError, match="model"):
        build_comparator("judge", {})


def _event(output: str, role: str = "challenger") -> dict[str, Any]:
    return {
        "request_id": "r1",
        "role": role,
        "challenger": "llm" if role == "challenger" else "",
        "model": "m",
        "output": output,
        "latency_ms": 5.0,
        "status": "ok",
        "error": None,
        "usage": None,
        "tool_trace": None,
        "experiment_id": "live",
    }


def test_only_pairs_the_cheap_steps_leave_open_go_to_the_judge() -> None:
    settings = load_settings(
        None,
        challengers=[
            {"name": "llm", "callable": "m:f", "comparator": _cascade(rubric="R")},
            {"name": "plain", "callable": "m:f", "comparator": "text"},
        ],
    )
    builder = ComparisonBuilder.from_settings(settings)
    jobs: list[dict[str, Any]] = []
    builder.on_judge = jobs.append
    request = {"request_id": "r1", "payload": '"What is 2+2?"', "experiment_id": "live"}
    champion = _event('"Four."', "champion")
    # identical text: the exact step agrees, nothing for the judge
    same = builder(request, champion, _event('"Four."'), "llm", "both_answered")
    assert same["diverged"] is False and not jobs
    # different: undecided, comparison emitted as usual, and a job for the judge
    out = builder(request, champion, _event('"It is 4."'), "llm", "both_answered")
    assert out["diverged"] is None and out["comparator"] == "cascade:judge"
    (job,) = jobs
    assert job["comparison"] is out
    # the judge reads texts, not JSON-quoted strings
    assert (job["input"], job["champion"], job["challenger"]) == (
        "What is 2+2?",
        "Four.",
        "It is 4.",
    )
    assert job["key"] == cache_key(builder.judges["llm"], "What is 2+2?", "Four.", "It is 4.")
    # a challenger without a judge never produces jobs
    builder(request, champion, _event('"It is 4."'), "plain", "both_answered")
    assert len(jobs) == 1


def test_the_example_config_loads_with_its_judges() -> None:
    from pathlib import Path

    settings = load_settings(Path(__file__).resolve().parents[2] / "examples" / "llm.toml")
    builder = ComparisonBuilder.from_settings(settings)
    assert sorted(builder.judges) == ["claude-haiku", "gpt-mini"]
    assert not settings.challenger("claude-haiku").live
