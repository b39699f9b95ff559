"""Comparators on the outputs real models produce: nested JSON, floats, lists, unicode, text."""

from __future__ import annotations

from typing import Any

import pytest

from shadowstream.core.errors import ConfigError, ShadowstreamError
from shadowstream.stream_agents.comparators import (
    CascadeComparator,
    Comparator,
    ExactComparator,
    JsonComparator,
    LabelComparator,
    NoiseAware,
    TextComparator,
    ToolCallComparator,
    Verdict,
    build_comparator,
    parse_tool_trace,
)
from shadowstream.stream_agents.comparators.paths import (
    MISSING,
    PathMatcher,
    PathSelector,
    generic_path,
    key_segment,
    parse_selector,
)
from shadowstream.stream_agents.formats import json_schema_check

# -- paths -----------------------------------------------------------------------------


def test_selector_syntaxes_agree() -> None:
    doc = {"choices": [{"message": {"content": "hi"}}], "a.b": {"c": [1, 2, 3]}}
    assert PathSelector("$.choices[0].message.content")(doc) == "hi"
    assert PathSelector("choices.0.message.content")(doc) == "hi"
    assert PathSelector('$["a.b"].c[-1]')(doc) == 3
    assert PathSelector("$")(doc) is doc
    assert PathSelector("$.choices[5]")(doc) is MISSING
    assert PathSelector("$.nope")(doc) is MISSING
    assert PathSelector("$.choices.message")(doc) is MISSING


def test_selector_rejects_garbage() -> None:
    with pytest.raises(ConfigError):
        parse_selector("$.a[")
    assert issubclass(ConfigError, ShadowstreamError)


def test_rendering_and_generic_paths() -> None:
    assert key_segment("plain_key-1") == ".plain_key-1"
    assert key_segment("a.b") == '["a.b"]'
    assert key_segment("with space") == '["with space"]'
    assert generic_path("$.items[3].tags[10]") == "$.items[*].tags[*]"
    assert generic_path('$["x[1]"][2]') == '$["x[1]"][*]'


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("$.id", "$.id", True),
        ("$.id", "$.idx", False),
        ("$.id", "$.id.sub", True),  # everything below
        ("id", "$.id", True),  # rooted shorthand
        ("*.timestamp", "$.a.b.timestamp", True),
        ("*.timestamp", "$.timestamp", True),
        ("*.timestamp", "$.timestamps", False),
        ("$.items[*].id", "$.items[12].id", True),
        ("$.items[*].id", "$.items[12].name", False),
        ("$.items[1].id", "$.items[1].id", True),
        ("$.items[1].id", "$.items[2].id", False),
        ("$.meta.*", "$.meta.anything[3]", True),
    ],
)
def test_glob_matching(pattern: str, path: str, hit: bool) -> None:
    assert PathMatcher([pattern])(path) is hit


# -- exact -------------------------------------------------------------------------------


def test_exact_respects_json_types_but_not_key_order() -> None:
    cmp = ExactComparator()
    assert cmp.compare({"a": 1, "b": 2}, {"b": 2, "a": 1}).diverged is False
    assert cmp.compare({"a": True}, {"a": 1}).diverged is True  # Python says equal
    assert cmp.compare("x", "x").diverged is False


def test_exact_normalization_whitespace_case_unicode() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert ExactComparator().compare(composed, decomposed).diverged is True
    assert ExactComparator(unicode_form="NFC").compare(composed, decomposed).diverged is False
    cmp = ExactComparator(normalize_whitespace=True, case_insensitive=True, unicode_form="NFKC")
    assert cmp.compare("  Hello\n\tWORLD ", "hello world").diverged is False
    assert cmp.compare("STRASSE", "straße").diverged is False  # casefold
    assert cmp.compare("ﬁle", "file").diverged is False  # NFKC ligature
    assert cmp.compare({"t": " A  b"}, {"t": "a b"}).diverged is False  # nested


def test_exact_mismatch_says_where() -> None:
    verdict = ExactComparator().compare("the quick brown fox", "the quick brown cat")
    assert verdict.diverged is True and verdict.score == 1.0
    assert "char 16" in verdict.summary


def test_exact_rejects_unknown_unicode_form() -> None:
    with pytest.raises(ConfigError):
        ExactComparator(unicode_form="NFX")


# -- json -------------------------------------------------------------------------------


def test_json_reports_nested_differing_paths() -> None:
    a = {"user": {"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}}, "items": [1, 2, 3]}
    b = {"user": {"name": "Ann", "address": {"city": "Bergen", "zip": "0150"}}, "items": [1, 2]}
    verdict = JsonComparator().compare(a, b)
    assert verdict.diverged is True
    assert verdict.paths == ("$.user.address.city", "$.items[2]")
    assert 0 < verdict.score < 1
    assert "2 of 6 fields differ" in verdict.summary


def test_json_identical_is_cheap_and_exact() -> None:
    doc = {"a": [1, {"b": None}], "c": "x"}
    assert JsonComparator().compare(doc, {"c": "x", "a": [1, {"b": None}]}).summary == "identical"


def test_json_types_matter_but_int_equals_float() -> None:
    cmp = JsonComparator()
    assert cmp.compare({"a": True}, {"a": 1}).paths == ("$.a",)
    assert cmp.compare({"a": 1}, {"a": 1.0}).diverged is False
    assert cmp.compare({"a": "1"}, {"a": 1}).paths == ("$.a",)
    assert cmp.compare({"a": None}, {}).paths == ("$.a",)
    assert JsonComparator(missing_as_null=True).compare({"a": None}, {}).diverged is False
    assert cmp.compare({"a": {"b": 1}}, {"a": [1]}).paths == ("$.a",)


def test_json_float_tolerance() -> None:
    a = {"score": 0.1 + 0.2, "big": 1_000_000.0, "p": [0.25, 0.75]}
    b = {"score": 0.3, "big": 1_000_400.0, "p": [0.2501, 0.7499]}
    assert JsonComparator().compare(a, b).diverged is True
    assert JsonComparator(abs_tol=1e-3, rel_tol=1e-3).compare(a, b).diverged is False
    verdict = JsonComparator(abs_tol=1e-3).compare(a, b)
    assert verdict.paths == ("$.big",)


def test_json_ignore_paths_with_globs_and_report_them() -> None:
    a = {"id": "r-1", "ts": 1, "data": {"items": [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}]}}
    b = {"id": "r-2", "ts": 2, "data": {"items": [{"id": 7, "v": "x"}, {"id": 8, "v": "z"}]}}
    cmp = JsonComparator(ignore_paths=["$.id", "ts", "$.data.items[*].id"])
    verdict = cmp.compare(a, b)
    assert verdict.diverged is True
    assert verdict.paths == ("$.data.items[1].v",)
    assert set(verdict.ignored) == {"$.id", "$.ts", "$.data.items[*].id"}
    same = cmp.compare(a, {**b, "data": a["data"]})
    assert same.diverged is False and same.ignored == ("$.id", "$.ts")
    assert "identical except ignored" in same.summary


def test_json_ignored_paths_only_listed_when_they_differ() -> None:
    cmp = JsonComparator(ignore_paths=["$.id", "$.ts"])
    verdict = cmp.compare({"id": 1, "ts": 5, "x": 1}, {"id": 1, "ts": 6, "x": 1})
    assert verdict.ignored == ("$.ts",)


def test_json_ignore_a_missing_key() -> None:
    cmp = JsonComparator(ignore_paths=["$.debug"])
    verdict = cmp.compare({"a": 1, "debug": {"t": 1}}, {"a": 1})
    assert verdict.diverged is False and verdict.ignored == ("$.debug",)


def test_json_reordered_lists_only_where_configured() -> None:
    a = {"tags": ["b", "a", "c"], "steps": [1, 2]}
    b = {"tags": ["a", "c", "b"], "steps": [2, 1]}
    assert JsonComparator().compare(a, b).diverged is True
    verdict = JsonComparator(unordered_lists=["$.tags"]).compare(a, b)
    assert verdict.paths == ("$.steps[0]", "$.steps[1]")
    assert JsonComparator(unordered_lists=["*"]).compare(a, b).diverged is False


def test_json_unordered_lists_of_objects_with_tolerance_and_ignores() -> None:
    a = {"hits": [{"id": "x1", "doc": "A", "score": 0.91}, {"id": "x2", "doc": "B", "score": 0.5}]}
    b = {
        "hits": [{"id": "y9", "doc": "B", "score": 0.5001}, {"id": "y8", "doc": "A", "score": 0.91}]
    }
    cmp = JsonComparator(unordered_lists=["$.hits"], abs_tol=1e-3, ignore_paths=["$.hits[*].id"])
    assert cmp.compare(a, b).diverged is False
    b["hits"][0]["doc"] = "C"
    verdict = cmp.compare(a, b)
    assert verdict.diverged is True and verdict.paths == ("$.hits[*]",)


def test_json_unordered_duplicates_count() -> None:
    cmp = JsonComparator(unordered_lists=["*"])
    assert cmp.compare(["a", "a", "b"], ["a", "b", "b"]).diverged is True
    assert cmp.compare(["a", "a", "b"], ["b", "a", "a"]).diverged is False


def test_json_unicode_keys_and_values() -> None:
    a = {"名前": "東京", "emoji": "👍", "é": "caf\u00e9"}
    b = {"名前": "東京", "emoji": "👎", "é": "cafe\u0301"}
    verdict = JsonComparator().compare(a, b)
    assert verdict.paths == ("$.emoji", "$.é")
    assert JsonComparator(unicode_form="NFC").compare(a, b).paths == ("$.emoji",)


def test_json_string_normalization() -> None:
    cmp = JsonComparator(normalize_whitespace=True, case_insensitive=True)
    assert cmp.compare({"a": "Hello  World"}, {"a": "hello world"}).diverged is False


def test_json_top_level_scalars_and_non_json_text() -> None:
    assert JsonComparator().compare("not json", "not json").diverged is False
    assert JsonComparator().compare("not json", {"a": 1}).paths == ("$",)
    assert JsonComparator().compare(None, None).diverged is False


def test_json_caps_reported_paths_but_counts_all() -> None:
    a = {f"k{i}": i for i in range(50)}
    b = {f"k{i}": -i - 1 for i in range(50)}
    verdict = JsonComparator(max_paths=5).compare(a, b)
    assert len(verdict.paths) == 5 and verdict.score == 1.0
    assert "50 of 50" in verdict.summary and "(+45 more)" in verdict.summary


def test_json_learned_noise_is_left_out_and_marked() -> None:
    cmp = JsonComparator()
    assert isinstance(cmp, NoiseAware)
    a = {"trace": "t1", "items": [{"rid": 1, "v": 1}], "answer": 42}
    b = {"trace": "t2", "items": [{"rid": 2, "v": 1}], "answer": 42}
    verdict = cmp.compare_ignoring(a, b, {"$.trace", "$.items[*].rid"})
    assert verdict.diverged is False
    assert set(verdict.ignored) == {"$.trace", "$.items[*].rid"}
    assert "(noise)" in verdict.summary


def test_json_rejects_bad_options() -> None:
    with pytest.raises(ConfigError):
        JsonComparator(ignore_paths="$.id")
    with pytest.raises(ConfigError):
        JsonComparator(abs_tol=-1)


# -- text -------------------------------------------------------------------------------


def test_text_similarity_threshold() -> None:
    cmp = TextComparator(threshold=0.8)
    a = "The capital of France is Paris."
    assert cmp.compare(a, "The capital of France is Paris!").diverged is False
    assert cmp.compare(a, "Berlin is in Germany, I think.").diverged is True
    verdict = cmp.compare(a, "the capital of france is paris.")
    assert 0 < verdict.score < 0.3


def test_text_word_order_method() -> None:
    a, b = "red green blue", "blue red green"
    assert TextComparator(method="ratio", threshold=0.9).compare(a, b).diverged is True
    assert TextComparator(method="token_sort_ratio", threshold=0.9).compare(a, b).diverged is False


def test_text_nested_in_json_via_path() -> None:
    cmp = TextComparator(path="$.choices[0].message.content", threshold=0.8)
    a = {"id": "chatcmpl-1", "choices": [{"message": {"content": "Sure, here is the summary."}}]}
    b = {"id": "chatcmpl-2", "choices": [{"message": {"content": "Sure, here's the summary."}}]}
    assert cmp.compare(a, b).diverged is False
    missing = cmp.compare(a, {"choices": []})
    assert missing.diverged is True and missing.paths == ("$.choices[0].message.content",)
    assert cmp.compare({"choices": []}, b).diverged is None


def test_text_unicode_and_whitespace_normalized_by_default() -> None:
    cmp = TextComparator(threshold=1.0)
    assert cmp.compare("caf\u00e9  au lait", "cafe\u0301 au lait\n").diverged is False


def test_text_undecided_band_for_cascades() -> None:
    cmp = TextComparator(undecided_between=[0.5, 0.95])
    assert cmp.compare("hello world", "hello world!").diverged is False
    assert cmp.compare("abc def", "xyz uvw").diverged is True
    assert cmp.compare("the cat sat on the mat", "a cat sat on a mat").diverged is None


def test_text_bad_options() -> None:
    with pytest.raises(ConfigError):
        TextComparator(method="cosine")
    with pytest.raises(ConfigError):
        TextComparator(undecided_between=[0.9, 0.1])


# -- label ------------------------------------------------------------------------------


def test_label_agreement() -> None:
    cmp = LabelComparator()
    assert cmp.compare({"label": "spam", "p": 0.9}, {"label": "spam", "p": 0.6}).diverged is False
    verdict = cmp.compare({"label": "spam"}, {"label": "ham"})
    assert verdict.diverged is True and verdict.paths == ("$.label",)
    assert cmp.compare("spam", "spam").diverged is False  # bare labels
    assert cmp.compare(3, 3.0).diverged is False
    assert cmp.compare({"x": 1}, {"label": "a"}).diverged is None
    assert cmp.compare({"label": "a"}, {"x": 1}).diverged is True


def test_label_top_k() -> None:
    cmp = LabelComparator(path="$.class", top_k_path="$.candidates", k=3, case_insensitive=True)
    champion = {"class": "Billing"}
    challenger = {
        "class": "account",
        "candidates": [
            {"label": "account"},
            {"label": "billing"},
            {"label": "other"},
            {"label": "x"},
        ],
    }
    verdict = cmp.compare(champion, challenger)
    assert verdict.diverged is False and verdict.score == pytest.approx(1 / 3)
    assert "#2" in verdict.summary
    assert cmp.compare({"class": "x"}, challenger).diverged is True  # 4th is beyond k
    # no candidates on the challenger: top-1 label decides
    assert cmp.compare(champion, {"class": "BILLING"}).diverged is False


def test_label_multi_label_as_sets() -> None:
    cmp = LabelComparator(path="$.labels")
    assert cmp.compare({"labels": ["a", "b"]}, {"labels": ["b", "a"]}).diverged is False
    verdict = cmp.compare({"labels": ["a", "b"]}, {"labels": ["a", "c"]})
    assert verdict.diverged is True and verdict.score == pytest.approx(2 / 3)


def test_label_k_needs_candidates_path() -> None:
    with pytest.raises(ConfigError):
        LabelComparator(k=3)


# -- format -------------------------------------------------------------------------------


def test_format_check_and_explanation() -> None:
    check = json_schema_check(
        {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["a", "b"]}}}
    )
    assert check({"label": "a"}) is True
    assert check({"label": "c"}) is False
    assert check("not json at all") is False
    explanation = check.explain({"label": "c"})
    assert explanation is not None and explanation.startswith("$.label")
    assert check.explain({"label": "a"}) is None
    with pytest.raises(ConfigError):
        json_schema_check({"type": "no-such-type"})


# -- cascade ------------------------------------------------------------------------------


class _Counting:
    """A comparator that records how often it was asked."""

    name = "expensive"

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.calls = 0

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        self.calls += 1
        return self.verdict


def test_cascade_runs_expensive_steps_only_when_undecided() -> None:
    from shadowstream.stream_agents.comparators.cascade import CascadeStep

    expensive = _Counting(Verdict(True, 0.7, "semantically different"))
    cascade = CascadeComparator(
        [
            CascadeStep(ExactComparator(normalize_whitespace=True), "agree"),
            CascadeStep(TextComparator(undecided_between=[0.4, 0.9])),
            CascadeStep(expensive),
        ]
    )
    same = cascade.compare("Hello  world", "Hello world")
    assert same.diverged is False and same.by == "exact" and expensive.calls == 0
    close = cascade.compare("Hello world", "Hello world!")
    assert close.diverged is False and close.by == "text" and expensive.calls == 0
    far = cascade.compare("abc", "xyz")
    assert far.diverged is True and far.by == "text" and expensive.calls == 0
    middle = cascade.compare("the cat sat on the mat", "a cat sat on a mat")
    assert middle.diverged is True and middle.by == "expensive" and expensive.calls == 1


def test_cascade_when_nobody_decides() -> None:
    cmp = build_comparator(
        "cascade",
        {"steps": [{"kind": "text", "options": {"undecided_between": [0.0, 1.0]}}]},
    )
    assert cmp.compare("a b c", "a b d").diverged is None
    cmp = build_comparator(
        "cascade",
        {
            "steps": [{"kind": "text", "options": {"undecided_between": [0.0, 1.0]}}],
            "when_undecided": "diverged",
        },
    )
    assert cmp.compare("a b c", "a b d").diverged is True


def test_cascade_passes_learned_noise_to_json_steps() -> None:
    cmp = build_comparator(
        "cascade", {"steps": [{"kind": "exact", "decide": "agree"}, {"kind": "json"}]}
    )
    assert isinstance(cmp, NoiseAware)
    verdict = cmp.compare_ignoring({"id": 1, "a": 1}, {"id": 2, "a": 1}, {"$.id"})
    assert verdict.diverged is False and verdict.by == "json" and verdict.ignored == ("$.id",)


# -- tool calls ----------------------------------------------------------------------------


def test_tool_trace_shapes_normalize_to_the_same_calls() -> None:
    plain = [{"name": "search", "arguments": {"q": "oslo"}, "result": "..."}]
    openai = [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "search", "arguments": '{"q": "oslo"}'},
        }
    ]
    anthropic = [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "oslo"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]},
    ]
    transcript = [{"role": "assistant", "tool_calls": openai}, {"role": "tool", "content": "..."}]
    expected = parse_tool_trace(plain)
    assert expected is not None and expected[0].name == "search"
    for shape in (openai, anthropic, transcript, {"tool_calls": plain}):
        assert parse_tool_trace(shape) == expected
    assert parse_tool_trace("not json") is None


def test_tool_calls_names_arguments_count() -> None:
    cmp = ToolCallComparator(ignore_arguments=["$.request_id"])
    champion = [
        {"name": "search", "arguments": {"q": "weather oslo", "request_id": "a"}},
        {"name": "fetch", "arguments": {"url": "https://x"}},
    ]
    same = [
        {"name": "search", "arguments": {"q": "weather oslo", "request_id": "b"}},
        {"name": "fetch", "arguments": {"url": "https://x"}},
    ]
    assert cmp.compare(champion, same).diverged is False
    other_args = [same[0], {"name": "fetch", "arguments": {"url": "https://y"}}]
    verdict = cmp.compare(champion, other_args)
    assert verdict.diverged is True and verdict.paths == ("tool_calls[1].arguments.url",)
    extra = [*same, {"name": "search", "arguments": {"q": "again"}}]
    verdict = cmp.compare(champion, extra)
    assert verdict.paths == ("tool_calls[2]",) and "2 vs 3 calls" in verdict.summary
    renamed = [{"name": "lookup", "arguments": {"q": "weather oslo"}}, same[1]]
    assert cmp.compare(champion, renamed).paths == ("tool_calls[0].name",)


def test_tool_calls_unordered() -> None:
    a = [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]
    b = [{"name": "b", "arguments": {}}, {"name": "a", "arguments": {"x": 1}}]
    assert ToolCallComparator().compare(a, b).diverged is True
    assert ToolCallComparator(ordered=False).compare(a, b).diverged is False
    assert ToolCallComparator(compare_arguments=False).compare(a, a[::-1]).diverged is True


# -- factory --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["exact", "json", "text", "label", "cascade"])
def test_every_kind_builds_and_satisfies_the_protocol(kind: str) -> None:
    options = {"steps": ["exact", "json"]} if kind == "cascade" else {}
    cmp = build_comparator(kind, options)
    assert isinstance(cmp, Comparator)
    verdict = cmp.compare({"label": "a", "x": [1.0]}, {"label": "a", "x": [1.0]})
    assert verdict.diverged is False and 0.0 <= verdict.score <= 1.0


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("nope", {}),
        ("json", {"no_such_option": 1}),
        ("text", {"threshold": 2}),
        ("cascade", {}),
        ("cascade", {"steps": [{"kind": "json", "decide": "maybe"}]}),
        ("cascade", {"steps": [{"kind": "exact"}], "extra": 1}),
    ],
)
def test_bad_comparator_config_is_a_config_error(kind: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        build_comparator(kind, options)


def test_scores_stay_in_unit_interval() -> None:
    pairs = [({"a": [1, 2, 3]}, {"a": []}), ("x", "y" * 100), ({}, {"a": {"b": {"c": 1}}})]
    for kind in ("exact", "json", "text", "label"):
        cmp = build_comparator(kind)
        for a, b in pairs:
            verdict = cmp.compare(a, b)
            assert 0.0 <= verdict.score <= 1.0, (kind, a, b, verdict)
