"""Differences for people: JSON per path, text word by word, and how `shadow show` prints them."""

from __future__ import annotations

import json

from rich.console import Console

from shadowstream.analytics.sidebyside import Answer, RequestView, SideBySide
from shadowstream.analytics.textdiff import MAX_PATHS, diff_outputs
from shadowstream.cli.commands.show import render_view


def j(value: object) -> str:
    return json.dumps(value)


def test_json_answers_differ_per_path() -> None:
    a = {"label": "refund", "n": 1, "flag": True, "items": [{"id": 1}, {"id": 2}], "odd key": 1}
    b = {"label": "refund", "n": 1.0, "flag": 1, "items": [{"id": 1}], "extra": None}
    diff = diff_outputs(j(a), j(b))
    assert diff.kind == "json"
    assert [(p.path, p.change, p.champion, p.challenger) for p in diff.paths] == [
        ("$.extra", "added", None, "null"),
        ("$.flag", "changed", "true", "1"),  # true is not 1
        ("$.items[1]", "removed", '{"id": 2}', None),
        ("$.n", "changed", "1", "1.0"),  # nor 1 the same as 1.0
        ('$["odd key"]', "removed", "1", None),
    ]
    assert diff.changed == 5
    assert diff_outputs(j(a), j(dict(a))).kind == "identical"
    assert diff_outputs(j({"k": 1}), j({"k": 1, "z": [], "a": {}})).paths[0].path == "$.a"


def test_huge_json_diffs_are_capped() -> None:
    diff = diff_outputs(j(list(range(2000))), j([-1] * 2000))
    assert len(diff.paths) == MAX_PATHS and diff.truncated


def test_text_answers_differ_word_by_word() -> None:
    diff = diff_outputs(j("The parcel is in Berlin, sadly."), j("The parcel is in Hamburg."))
    assert diff.kind == "text"
    changed = [(r.op, r.champion, r.challenger) for r in diff.runs if r.op != "equal"]
    assert changed == [("replace", "Berlin, sadly", "Hamburg")]
    # plain text (not JSON) and a JSON string compare as the same text
    assert diff_outputs("plain words here", j("plain words there")).kind == "text"
    assert diff_outputs(j("same"), "same").kind == "identical"
    assert diff_outputs(None, j("x")).kind == "missing"
    # an object against a string: compared as text
    assert diff_outputs(j({"a": 1}), j("a: 1")).kind == "text"


def test_show_renders_both_sides_with_markers_paths_and_the_judge() -> None:
    def answer(side: str, output: object, **kw: object) -> Answer:
        return Answer(side, f"{side}-model", "ok", j(output), 42.0, 10, 3, 0.001, **kw)  # type: ignore[arg-type]

    text_side = SideBySide(
        "live",
        "fast",
        "r1",
        "both_answered",
        answer("champion", "It ships on Monday."),
        answer("fast", "It ships on Friday."),
        diff_outputs(j("It ships on Monday."), j("It ships on Friday.")),
        None,
        "cascade:judge",
        "undecided after exact",
        "worse",
        "Monday is right.",
    )
    json_side = SideBySide(
        "live",
        "struct",
        "r1",
        "both_answered",
        answer("champion", {"a": 1}),
        answer("struct", {"a": 2}),
        diff_outputs(j({"a": 1}), j({"a": 2})),
        True,
        "json",
        "$.a",
        None,
        None,
    )
    view = RequestView(
        "r1",
        "live",
        "/v1/q",
        "svc",
        None,
        {"lang": "de"},
        j("When?"),
        text_side.champion,
        [text_side, json_side],
    )
    console = Console(record=True, width=140, no_color=True)
    console.print(render_view(view, markers=True))
    out = console.export_text()
    assert "[-Monday-]" in out and "{+Friday+}" in out and "[-It-]" not in out
    assert "judge: worse - Monday is right." in out
    assert "differences by path" in out and "$.a" in out
    assert "42 ms · tokens 10 → 3 · $0.001000" in out and "lang=de" in out and "When?" in out


def test_long_answers_are_diffed_by_sentence_then_word() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(300)]
    changed = list(sentences)
    changed[150] = "Sentence number 150 talks about something else entirely."
    diff = diff_outputs(j(" ".join(sentences)), j(" ".join(changed)))
    edits = [(r.champion, r.challenger) for r in diff.runs if r.op != "equal"]
    assert edits == [("topic", "something"), ("3", "else entirely")]  # the space between stays
    # the runs put together give back both texts
    assert "".join(r.champion for r in diff.runs) == " ".join(sentences)
    assert "".join(r.challenger for r in diff.runs) == " ".join(changed)
    # a changed block too large for a word diff is shown as one replacement
    a, b = " ".join(["alpha"] * 4_000), " ".join(["beta"] * 4_000)
    assert [r.op for r in diff_outputs(j(a), j(b)).runs] == ["replace"]
