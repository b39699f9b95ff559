"""NoiseLearner and the ComparisonBuilder: noise, tool calls, formats, the fast path."""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson
import pytest

from shadowstream.core.config import load_settings
from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators import (
    JsonComparator,
    TextComparator,
    ToolCallComparator,
)
from shadowstream.stream_agents.comparison import ComparisonBuilder, ToolCallPolicy
from shadowstream.stream_agents.formats import json_schema_check
from shadowstream.stream_agents.noise import NoiseLearner

SCOPE = ("svc", "/predict")


def noisy_answer(i: int) -> dict[str, Any]:
    return {
        "request_id": uuid.uuid4().hex,
        "items": [{"sku": f"s{i}", "trace": uuid.uuid4().hex[:8]}],
        "label": "a",
        "sometimes": random.random(),
    }


def test_learns_paths_that_differ_champion_vs_champion() -> None:
    learner = NoiseLearner(min_rate=0.3, min_samples=20)
    rng = random.Random(7)
    for i in range(19):
        a = {"id": uuid.uuid4().hex, "x": i, "rare": 1}
        b = {"id": uuid.uuid4().hex, "x": i, "rare": 2 if rng.random() < 0.05 else 1}
        learner.observe(SCOPE, a, b)
    assert learner.noisy(SCOPE) == frozenset()  # not enough samples yet
    learner.observe(SCOPE, {"id": "1", "x": 0}, {"id": "2", "x": 0})
    assert learner.noisy(SCOPE) == {"$.id"}
    assert learner.rate(SCOPE, "$.id") == 1.0
    assert learner.noisy(("svc", "/other")) == frozenset()  # per endpoint


def test_list_items_generalize_to_one_path() -> None:
    learner = NoiseLearner(min_rate=0.5, min_samples=5)
    for i in range(5):
        learner.observe(SCOPE, noisy_answer(i), noisy_answer(i))
    assert learner.noisy(SCOPE) == {"$.request_id", "$.items[*].trace", "$.sometimes"}


def test_decay_forgets_paths_that_stopped_being_noisy() -> None:
    learner = NoiseLearner(min_rate=0.2, min_samples=10, window=100)
    for _ in range(60):
        learner.observe(SCOPE, {"t": 1}, {"t": 2})
    assert learner.noisy(SCOPE) == {"$.t"}
    for _ in range(400):
        learner.observe(SCOPE, {"t": 1}, {"t": 1})
    assert learner.noisy(SCOPE) == frozenset()


def test_hysteresis_keeps_a_noisy_path_near_the_threshold() -> None:
    learner = NoiseLearner(min_rate=0.5, min_samples=10, window=10_000)
    for i in range(20):
        learner.observe(SCOPE, {"t": 1}, {"t": 2 if i % 2 == 0 else 1})  # 50 %
    assert learner.noisy(SCOPE) == {"$.t"}
    for _ in range(10):
        learner.observe(SCOPE, {"t": 1}, {"t": 1})  # 10/30 = 33 %: above half the threshold
    assert learner.noisy(SCOPE) == {"$.t"}


def test_order_noise_is_not_learned_where_lists_are_compared_as_sets() -> None:
    settings = load_settings(
        None,
        noise={"min_rate": 0.5, "min_samples": 5},
        challengers=[
            {
                "name": "control",
                "callable": "m:f",
                "control": True,
                "comparator": {
                    "kind": "json",
                    "options": {"unordered_lists": ["$.tags"], "ignore_paths": ["$.id"]},
                },
            },
        ],
    )
    builder = ComparisonBuilder.from_settings(settings)
    assert builder.noise is not None
    for i in range(10):
        tags = ["a", "b", "c"]
        builder.noise.observe(
            SCOPE,
            {"id": i, "tags": tags},
            {"id": -i, "tags": tags[::-1]},
            builder.control_differs["control"],  # the control's own options
        )
    assert builder.noise.noisy(SCOPE) == {"$.id"}  # ids are noise; set order is not


def test_the_whole_output_is_never_learned_as_noise() -> None:
    learner = NoiseLearner(min_rate=0.1, min_samples=1)
    for i in range(5):
        learner.observe(SCOPE, f"free text {i}", f"other text {i}")
    assert learner.noisy(SCOPE) == frozenset()


def test_memory_is_bounded() -> None:
    learner = NoiseLearner(min_rate=0.5, min_samples=1, max_paths=10, max_scopes=2)
    for i in range(100):
        learner.observe(SCOPE, {f"k{i}": 1}, {})
    assert len(learner.snapshot()["svc /predict"]["noisy"]) <= 10
    learner.observe(("a", "b"), {}, {})
    learner.observe(("c", "d"), {}, {})
    assert learner.dropped_scopes == 1


def test_bad_noise_settings() -> None:
    with pytest.raises(ConfigError):
        NoiseLearner(min_rate=0)


# -- the builder ---------------------------------------------------------------------------


def request(rid: str, endpoint: str = "/predict") -> dict[str, Any]:
    return {
        "request_id": rid,
        "experiment_id": "live",
        "service": "svc",
        "endpoint": endpoint,
        "champion_model": "m1",
        "timestamp_us": 1,
        "attributes": {"lang": "en"},
    }


def response(
    rid: str,
    output: Any,
    *,
    role: str = "challenger",
    name: str = "",
    status: str = "ok",
    trace: Any = None,
    tool_calls: int | None = None,
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "role": role,
        "challenger": name,
        "model": name or "m1",
        "output": None if output is None else orjson.dumps(output).decode(),
        "latency_ms": 10.0,
        "status": status,
        "error": None,
        "usage": {"tokens_in": 1, "tokens_out": 2, "tool_calls": tool_calls, "cost": None},
        "tool_trace": None if trace is None else orjson.dumps(trace).decode(),
        "experiment_id": "live",
    }


def champion_answer(i: int) -> dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "generated_at": random.random(), "label": f"l{i % 3}"}


def test_control_teaches_and_other_challengers_ignore_learned_noise() -> None:
    learner = NoiseLearner(min_rate=0.5, min_samples=10)
    builder = ComparisonBuilder(
        {"control": JsonComparator(), "candidate": JsonComparator()},
        controls={"control"},
        noise=learner,
    )
    # before learning: provisional, left out of divergence (random ids would diverge)
    rid = "r0"
    early = builder(
        request(rid),
        response(rid, champion_answer(0), role="champion"),
        response(rid, champion_answer(0), name="candidate"),
        "candidate",
        "both_answered",
    )
    assert early["diverged"] is None and early["divergence_score"] is None
    assert early["noise_provisional"] is True and "provisional" in early["diff_summary"]
    assert early["diff_paths"]  # what differed is still shown
    for i in range(10):
        rid = f"c{i}"
        learning = builder(
            request(rid),
            response(rid, champion_answer(i), role="champion"),
            response(rid, champion_answer(i), name="control"),
            "control",
            "both_answered",
        )
    # the tenth control comparison made the model ready: it is judged, and filtered
    assert learning["noise_provisional"] is None and learning["diverged"] is False
    assert learner.noisy(("svc", "/predict")) == {"$.request_id", "$.generated_at"}
    agreeing = builder(
        request("r1"),
        response("r1", champion_answer(1), role="champion"),
        response("r1", champion_answer(1), name="candidate"),
        "candidate",
        "both_answered",
    )
    assert agreeing["diverged"] is False and agreeing["noise_provisional"] is None
    assert set(agreeing["ignored_paths"]) == {"$.request_id", "$.generated_at"}
    assert "(noise)" in agreeing["diff_summary"]
    real = builder(
        request("r2"),
        response("r2", champion_answer(1), role="champion"),
        response("r2", champion_answer(2), name="candidate"),
        "candidate",
        "both_answered",
    )
    assert real["diverged"] is True and real["diff_paths"] == ["$.label"]
    # the control's own comparisons leave the learned noise out too: its floor is real
    control = builder(
        request("c99"),
        response("c99", champion_answer(1), role="champion"),
        response("c99", champion_answer(1), name="control"),
        "control",
        "both_answered",
    )
    assert control["diverged"] is False
    assert set(control["ignored_paths"]) == {"$.request_id", "$.generated_at"}
    # learned per endpoint: another endpoint has learned nothing yet, so it waits
    other = builder(
        request("o1", "/other"),
        response("o1", champion_answer(1), role="champion"),
        response("o1", champion_answer(1), name="candidate"),
        "candidate",
        "both_answered",
    )
    assert other["diverged"] is None and other["noise_provisional"] is True
    assert builder.metrics()["noise"]["svc /predict"]["samples"] == 11
    assert builder.stats.provisional == 11  # r0, the first nine control comparisons, o1


def test_identical_bytes_skip_parsing_and_comparing() -> None:
    class Exploding:
        name = "boom"

        def compare(self, a: Any, b: Any) -> Any:
            raise AssertionError("must not be called for identical outputs")

    builder = ComparisonBuilder({"x": Exploding()})
    out = {"a": 1}
    row = builder(
        request("r"),
        response("r", out, role="champion"),
        response("r", out, name="x"),
        "x",
        "both_answered",
    )
    assert row["diverged"] is False and row["divergence_score"] == 0.0
    assert builder.stats.identical_bytes == 1


def test_comparator_errors_do_not_stop_the_join() -> None:
    class Broken:
        name = "broken"

        def compare(self, a: Any, b: Any) -> Any:
            raise KeyError("oops")

    builder = ComparisonBuilder({"x": Broken()})
    row = builder(
        request("r"),
        response("r", 1, role="champion"),
        response("r", 2, name="x"),
        "x",
        "both_answered",
    )
    assert row["diverged"] is None and "comparator error" in row["diff_summary"]


def test_format_validity_is_separate_from_divergence() -> None:
    check = json_schema_check({"type": "object", "required": ["label"]})
    builder = ComparisonBuilder({"x": JsonComparator()}, {"x": check})
    row = builder(
        request("r"),
        response("r", {"label": "a"}, role="champion"),
        response("r", "Sorry, I cannot", name="x"),
        "x",
        "both_answered",
    )
    assert row["champion_format_valid"] is True and row["challenger_format_valid"] is False
    assert row["diverged"] is True
    assert "challenger format invalid" in row["diff_summary"]
    # both invalid the same way: they agree, and both formats are flagged
    row = builder(
        request("r"),
        response("r", [1], role="champion"),
        response("r", [1], name="x"),
        "x",
        "both_answered",
    )
    assert row["diverged"] is False
    assert row["champion_format_valid"] is False and row["challenger_format_valid"] is False
    # an errored challenger has no format to judge
    row = builder(
        request("r"),
        response("r", {"label": "a"}, role="champion"),
        response("r", None, name="x", status="error"),
        "x",
        "both_answered",
    )
    assert row["challenger_format_valid"] is None and row["diverged"] is None


def test_tool_call_differences_reported_or_counted() -> None:
    champion_trace = [
        {"name": "search", "arguments": {"q": "a"}},
        {"name": "fetch", "arguments": {}},
    ]
    challenger_trace = [{"name": "search", "arguments": {"q": "b"}}]
    report = ComparisonBuilder({"x": TextComparator()})
    row = report(
        request("r"),
        response("r", "final answer", role="champion", trace=champion_trace, tool_calls=2),
        response("r", "final answer", name="x", trace=challenger_trace, tool_calls=1),
        "x",
        "both_answered",
    )
    assert row["diverged"] is False  # default mode "report": outputs decide
    assert row["diff_paths"] == ["tool_calls[0].arguments.q", "tool_calls[1]"]
    assert "tool calls differ (2 vs 1 calls" in row["diff_summary"]
    assert row["champion_tool_calls"] == 2 and row["challenger_tool_calls"] == 1
    strict = ComparisonBuilder(
        {"x": TextComparator()}, tool_calls={"x": ToolCallPolicy("diverge", ToolCallComparator())}
    )
    row = strict(
        request("r"),
        response("r", "final answer", role="champion", trace=champion_trace),
        response("r", "final answer", name="x", tool_calls=0),  # no trace, but zero calls
        "x",
        "both_answered",
    )
    assert row["diverged"] is True and row["diff_paths"] == ["tool_calls[0]", "tool_calls[1]"]


def test_cascade_names_the_deciding_step() -> None:
    settings = load_settings(
        None,
        challengers=[
            {
                "name": "llm",
                "callable": "m:f",
                "comparator": {
                    "kind": "cascade",
                    "options": {
                        "steps": [
                            {"kind": "exact", "decide": "agree"},
                            {"kind": "text", "options": {"threshold": 0.8}},
                        ]
                    },
                },
            }
        ],
    )
    builder = ComparisonBuilder.from_settings(settings)
    row = builder(
        request("r"),
        response("r", "Paris is the capital.", role="champion"),
        response("r", "Paris is the capital!", name="llm"),
        "llm",
        "both_answered",
    )
    assert row["comparator"] == "cascade:text" and row["diverged"] is False


def test_from_settings_wires_controls_noise_formats_and_tool_modes() -> None:
    settings = load_settings(
        None,
        noise={"min_rate": 0.4, "min_samples": 5},
        challengers=[
            {"name": "control", "callable": "m:f", "control": True},
            {
                "name": "agent",
                "callable": "m:f",
                "output_schema": {"type": "object"},
                "comparator": {
                    "kind": "json",
                    "tool_calls": "diverge",
                    "options": {"ignore_paths": ["$.ts"]},
                },
            },
        ],
    )
    builder = ComparisonBuilder.from_settings(settings)
    assert builder.controls == {"control"}
    assert builder.noise is not None and builder.noise.min_samples == 5
    assert set(builder.format_checks) == {"agent"}
    assert builder.tool_calls["agent"].mode == "diverge"
    no_control = load_settings(None, challengers=[{"name": "a", "callable": "m:f"}])
    assert ComparisonBuilder.from_settings(no_control).noise is None


def test_only_comparisons_a_control_is_coming_for_wait_for_the_noise_model() -> None:
    """An endpoint no control covers, or a batch run that asked no control, has no
    noise model to wait for: judged at once. A batch run with a control waits."""
    learner = NoiseLearner(min_rate=0.5, min_samples=10)
    builder = ComparisonBuilder(
        {"control": JsonComparator(), "candidate": JsonComparator()},
        controls={"control"},
        noise=learner,
        control_endpoints={"control": ("/predict",)},
    )
    runs = {"b-1": ("candidate",), "b-2": ("candidate", "control")}
    builder.experiment_challengers = runs.get

    def judge(endpoint: str, experiment: str) -> Any:
        event = {**request("r", endpoint), "experiment_id": experiment}
        answer = champion_answer(0)
        return builder(
            event,
            response("r", answer, role="champion"),
            response("r", {**answer, "label": "other"}, name="candidate"),
            "candidate",
            "both_answered",
        )

    assert judge("/elsewhere", "live")["diverged"] is True  # no control covers it
    assert judge("/predict", "live")["noise_provisional"] is True
    assert judge("/predict", "b-1")["diverged"] is True  # the run asked no control
    assert judge("/predict", "b-2")["noise_provisional"] is True
    assert judge("/predict", "b-unknown")["diverged"] is True
