"""Ranked-list measures and comparator: values worked by hand, the RBO paper's own figures,
closed forms against their defining sums, and awkward lists (empty, duplicate, uneven)."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

import pytest

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators import build_comparator
from shadowstream.stream_agents.comparators.ranked import RankedListComparator
from shadowstream.stream_agents.comparators.ranking import (
    jaccard,
    ndcg,
    overlaps,
    rbo_ext,
    rbo_min,
    rbo_weight,
)

S = list("abcde")
T = list("bcdae")


# -- RBO ---------------------------------------------------------------------------------------
def test_rbo_ext_by_hand() -> None:
    # X_d = 0, 1, 2, 4, 5 ; (1-p)/p * sum X_d/d p^d + X_5/5 p^5
    # = 1/9 * (0.405 + 0.486 + 0.6561 + 0.59049) + 0.59049 = 0.828
    assert overlaps(S, T) == [0, 1, 2, 4, 5]
    assert rbo_ext(S, T, 0.9) == pytest.approx(0.828, abs=1e-12)
    assert rbo_ext(T, S, 0.9) == pytest.approx(0.828, abs=1e-12)


def test_rbo_ext_uneven_by_hand() -> None:
    """WMZ10 Eq. 32 with s = 3, l = 5, p = 0.5, worked in fractions: 193/240."""
    short, long = list("abc"), list("adbec")
    assert overlaps(short, long) == [1, 1, 2, 2, 3]
    p = Fraction(1, 2)
    x, s, l_ = [1, 1, 2, 2, 3], 3, 5
    head = sum(Fraction(x[d - 1], d) * p**d for d in range(1, 6))
    head += sum(Fraction(x[s - 1] * (d - s), s * d) * p**d for d in range(s + 1, 6))
    expected = (1 - p) / p * head + (Fraction(x[4] - x[2], l_) + Fraction(x[2], s)) * p**5
    assert expected == Fraction(193, 240)
    assert rbo_ext(short, long, 0.5) == pytest.approx(193 / 240, abs=1e-12)
    assert rbo_ext(long, short, 0.5) == pytest.approx(193 / 240, abs=1e-12)


def test_rbo_weight_matches_the_paper() -> None:
    """WMZ10 Eq. 21 and p. 19: at p = 0.9 the first 10 ranks carry 86% of the weight, and
    p = 0.98 gives the first 50 about the same."""
    assert rbo_weight(0.9, 10) == pytest.approx(0.8556, abs=5e-5)
    assert rbo_weight(0.98, 50) == pytest.approx(0.8522, abs=5e-5)
    # the weight of a prefix is RBO_MIN of two lists identical to that depth and
    # disjoint after it: Eq. 21 and Eq. 11 agree
    same = [f"s{i}" for i in range(10)]
    assert rbo_min(same, list(same), 0.9) == pytest.approx(rbo_weight(0.9, 10), abs=1e-12)


def _definition(short: list[str], long: list[str], p: float, extrapolate: bool) -> float:
    """RBO from its defining sum (WMZ10 Eq. 7), the unseen agreement filled in as RBO_EXT
    (Eq. 32) or RBO_MIN (Eq. 11) assume it, summed to a depth where p^d vanishes."""
    x = overlaps(short, long)
    s, l_ = len(short), len(long)
    total, depth = 0.0, 4000
    for d in range(1, depth + 1):
        if d <= l_:
            seen = x[d - 1]
            agreed = seen + (d - s) * x[s - 1] / s if extrapolate and d > s else seen
        else:
            agreed = x[l_ - 1]
            if extrapolate:
                agreed = (x[l_ - 1] - x[s - 1]) * d / l_ + x[s - 1] * d / s
        total += p ** (d - 1) * agreed / d
    return (1 - p) * total


@pytest.mark.parametrize("seed", range(12))
def test_closed_forms_equal_their_defining_sums(seed: int) -> None:
    rng = random.Random(seed)
    items = [f"d{i}" for i in range(30)]
    long = rng.sample(items, rng.randint(1, 15))
    short = rng.sample(items, rng.randint(1, len(long)))
    p = rng.choice([0.5, 0.8, 0.9, 0.95])
    assert rbo_ext(short, long, p) == pytest.approx(_definition(short, long, p, True), abs=1e-9)
    assert rbo_min(short, long, p) == pytest.approx(_definition(short, long, p, False), abs=1e-9)
    assert 0.0 <= rbo_min(short, long, p) <= rbo_ext(short, long, p) <= 1.0 + 1e-12


def test_rbo_edges() -> None:
    assert rbo_ext(S, list(S), 0.9) == pytest.approx(1.0)
    assert rbo_ext(S, list("vwxyz"), 0.9) == 0.0
    assert rbo_ext([], [], 0.9) == 1.0
    assert rbo_ext([], S, 0.9) == 0.0
    with pytest.raises(ValueError):
        rbo_ext(S, T, 1.0)
    # top-weighted: a swap at the top costs more than the same swap at the bottom
    assert rbo_ext(S, list("bacde"), 0.9) < rbo_ext(S, list("abced"), 0.9)


# -- overlap and NDCG ---------------------------------------------------------------------------
def test_jaccard_and_ndcg_by_hand() -> None:
    assert jaccard(list("abcd"), list("abef")) == pytest.approx(2 / 6)
    assert jaccard([], []) == 1.0
    # rank gains 3, 2, 1: DCG(b, a, d) = 2 + 3/log2(3); IDCG = 3 + 2/log2(3) + 1/2
    expected = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3) + 0.5)
    assert ndcg(list("abc"), list("bad")) == pytest.approx(expected)
    assert ndcg(list("abc"), list("bad")) == pytest.approx(0.817494, abs=1e-6)
    binary = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert ndcg(list("abc"), list("bad"), binary) == pytest.approx(
        (1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5)
    )
    assert ndcg(list("abc"), list("abc")) == pytest.approx(1.0)
    assert ndcg([], []) == 1.0
    assert ndcg(list("ab"), list("ab"), {"a": 0.0, "b": 0.0}) is None  # no gain: undefined


# -- the comparator ------------------------------------------------------------------------------
def docs(*ids: Any, scores: list[float] | None = None) -> dict[str, Any]:
    results = [{"doc_id": i, **({"score": scores[n]} if scores else {})} for n, i in enumerate(ids)]
    return {"results": results, "took_ms": 12}


def comparator(**options: Any) -> RankedListComparator:
    built = build_comparator("ranked", {"path": "$.results", "id_path": "doc_id", **options})
    assert isinstance(built, RankedListComparator)
    return built


def test_rebuilt_index_reranked_and_missing_documents() -> None:
    champion = docs(*[f"doc-{i}" for i in range(1, 11)])
    # doc-3 and doc-9 gone, two new documents in, doc-1 and doc-2 swapped
    challenger = docs(
        "doc-2", "doc-1", "doc-17", "doc-4", "doc-5", "doc-6", "doc-7", "doc-8", "doc-42", "doc-10"
    )
    verdict = comparator(k=10, measure="jaccard", threshold=0.8).compare(champion, challenger)
    measures = dict(verdict.measures)
    assert measures["shared@10"] == 8
    assert measures["jaccard@10"] == pytest.approx(8 / 12, abs=1e-6)
    assert measures["overlap@10"] == pytest.approx(0.8)
    assert 0 < measures["rbo@10,p=0.9"] < 1 and 0 < measures["ndcg@10"] < 1
    assert verdict.diverged is True and verdict.score == pytest.approx(1 - 8 / 12, abs=1e-6)
    assert "new in top-10: doc-17, doc-42" in verdict.summary
    assert "dropped from top-10: doc-3, doc-9" in verdict.summary
    assert verdict.paths == ("$.results",)
    # the same pair judged on overlap@10 = 0.8 >= 0.8 agrees
    agree = comparator(k=10, measure="overlap", threshold=0.8).compare(champion, challenger)
    assert agree.diverged is False and agree.paths == ()


def test_threshold_band_leaves_the_middle_undecided() -> None:
    champion, challenger = docs(*S), docs(*T)
    verdict = comparator(k=5, undecided_between=[0.5, 0.9]).compare(champion, challenger)
    assert verdict.diverged is None and "undecided" in verdict.summary
    assert dict(verdict.measures)["rbo@5,p=0.9"] == pytest.approx(0.828)


def test_empty_lists() -> None:
    same = comparator().compare(docs(), docs())
    assert same.diverged is False
    assert dict(same.measures)["rbo@10,p=0.9"] == 1.0 and dict(same.measures)["ndcg@10"] == 1.0
    none_new = comparator().compare(docs(), docs("a"))
    assert none_new.diverged is True and dict(none_new.measures)["ndcg@10"] == 0.0
    assert "new in top-10: a" in none_new.summary
    lost = comparator().compare(docs("a", "b"), docs())
    assert lost.diverged is True and dict(lost.measures)["jaccard@10"] == 0.0


def test_no_list_at_the_path() -> None:
    assert comparator().compare({"error": "x"}, docs("a")).diverged is None
    missing = comparator().compare(docs("a"), {"results": "not a list"})
    assert missing.diverged is True and missing.score == 1.0


def test_duplicates_keep_their_first_place_and_items_without_id_are_counted() -> None:
    champion = docs("a", "b", "c")
    challenger = {"results": [{"doc_id": "a"}, {"doc_id": "a"}, {"x": 1}, {"doc_id": "b"},
                              {"doc_id": "c"}, {"doc_id": "b"}]}  # fmt: skip
    verdict = comparator().compare(champion, challenger)
    assert verdict.diverged is False
    assert dict(verdict.measures)["rbo@10,p=0.9"] == pytest.approx(1.0)
    assert "2 duplicate ids in the challenger's list ignored" in verdict.summary
    assert "1 items without an id in the challenger's list" in verdict.summary


def test_unequal_lengths_complete_or_prefix() -> None:
    champion, challenger = docs("a", "b", "c", "d"), docs("a", "b")
    complete = dict(comparator().compare(champion, challenger).measures)["rbo@10,p=0.9"]
    # the short list's missing places match nothing: as if padded with unseen items
    assert complete == pytest.approx(rbo_ext(list("abcd"), ["a", "b", "x", "y"], 0.9), abs=1e-6)
    assert complete < 1.0
    prefix = dict(comparator(short_list="prefix").compare(champion, challenger).measures)
    assert prefix["rbo@10,p=0.9"] == pytest.approx(1.0)  # WMZ10 Eq. 32 extrapolates it
    assert (
        "dropped from top-10: c, d; 4 vs 2 items"
        in comparator().compare(champion, challenger).summary
    )


def test_k_cuts_both_lists_and_ids_compare_as_text() -> None:
    champion = {"results": [{"doc_id": 1}, {"doc_id": 2}, {"doc_id": 3}, {"doc_id": 4}]}
    challenger = {"results": [{"doc_id": "1"}, {"doc_id": "2.0"}, {"doc_id": 2.0}, {"doc_id": 9}]}
    verdict = comparator(k=2).compare(champion, challenger)
    assert dict(verdict.measures)["shared@2"] == 1  # "2.0" is not 2; 2.0 (a number) is
    verdict3 = comparator(k=3).compare(champion, challenger)
    assert dict(verdict3.measures)["shared@3"] == 2


def test_scores_sort_and_grade() -> None:
    champion = docs("a", "b", "c", scores=[0.2, 0.9, 0.5])  # ranked b, c, a by score
    challenger = docs("b", "c", "a", scores=[3, 2, 1])
    sorted_ = comparator(sort_by_score=True, score_path="score").compare(champion, challenger)
    assert sorted_.diverged is False and "same order" in sorted_.summary
    graded = comparator(gain="score", score_path="score", measure="ndcg")
    value = dict(graded.compare(champion, docs("a", "b", "c")).measures)["ndcg@10"]
    ideal = 0.9 + 0.5 / math.log2(3) + 0.2 / 2
    assert value == pytest.approx((0.2 + 0.9 / math.log2(3) + 0.5 / 2) / ideal, abs=1e-6)


def test_bare_id_lists_and_id_key() -> None:
    bare = build_comparator("ranked", {"k": 3})
    assert bare.compare(["x", "y", "z"], ["x", "y", "z"]).diverged is False
    keyed = build_comparator("ranked", {"path": "hits"})
    verdict = keyed.compare({"hits": [{"id": 1}, {"id": 2}]}, {"hits": [{"id": 2}, {"id": 1}]})
    assert "same items, reordered" in verdict.summary


@pytest.mark.parametrize(
    "options",
    [
        {"measure": "kendall"},
        {"gain": "score"},
        {"sort_by_score": True},
        {"k": 0},
        {"p": 1.0},
        {"threshold": 2},
        {"short_list": "maybe"},
        {"undecided_between": [0.9, 0.5]},
        {"path": "$.[x"},
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        build_comparator("ranked", options)


def test_many_new_items_are_named_up_to_max_examples() -> None:
    champion = docs(*[f"a{i}" for i in range(10)])
    challenger = docs(*[f"b{i}" for i in range(10)])
    verdict = comparator(max_examples=3).compare(champion, challenger)
    assert "new in top-10: b0, b1, b2, +7 more" in verdict.summary
