"""Free-text similarity (rapidfuzz): for outputs that never repeat word for word.

Options:
    path:       where the text is, when the output is JSON (``$.choices[0].text``);
                without it a string output is the text, and any other output is
                compared as its canonical JSON text.
    method:     ``ratio`` (default; normalized Indel similarity), ``partial_ratio``,
                ``token_sort_ratio`` (word order ignored), ``token_set_ratio``
                (duplicates and word order ignored), ``wratio``, ``levenshtein``,
                ``jaro_winkler``.
    threshold:  similarity below it is a divergence (default 0.85).
    undecided_between: ``[low, high]``: similarity >= high agrees, < low
                diverges, in between is left undecided for the next step of a
                cascade (e.g. a semantic comparator).
    normalize_whitespace (default true) / case_insensitive / unicode_form
                (default NFC): applied before scoring.
    max_chars:  texts are cut to this length before scoring (cost is about
                quadratic in length; default 20000).

score = 1 - similarity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import IDENTICAL, Verdict, canonical, clamp01
from shadowstream.stream_agents.comparators.normalize import text_normalizer
from shadowstream.stream_agents.comparators.paths import MISSING, PathSelector


def _percent(fn: Callable[..., float]) -> Callable[[str, str], float]:
    return lambda a, b: fn(a, b) / 100.0


METHODS: dict[str, Callable[[str, str], float]] = {
    "ratio": _percent(fuzz.ratio),
    "partial_ratio": _percent(fuzz.partial_ratio),
    "token_sort_ratio": _percent(fuzz.token_sort_ratio),
    "token_set_ratio": _percent(fuzz.token_set_ratio),
    "wratio": _percent(fuzz.WRatio),
    "levenshtein": Levenshtein.normalized_similarity,
    "jaro_winkler": JaroWinkler.normalized_similarity,
}


def as_text(value: Any) -> str:
    """The text a comparator scores: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    encoded = canonical(value)
    return encoded.decode() if encoded is not None else str(value)


def similarity_band(
    threshold: float, undecided_between: Sequence[float] | None
) -> tuple[float, float]:
    """(low, high) similarity bounds: >= high is the same, < low diverged, between undecided
    (a cascade's next comparator decides). Without a band both are the threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError("threshold must be in [0, 1]")
    if undecided_between is None:
        return float(threshold), float(threshold)
    if len(undecided_between) != 2 or not (
        0.0 <= undecided_between[0] <= undecided_between[1] <= 1.0
    ):
        raise ConfigError("undecided_between must be [low, high] with 0 <= low <= high <= 1")
    return float(undecided_between[0]), float(undecided_between[1])


def settled_verdict(
    a: str | None, b: str | None, where: str, paths: tuple[str, ...]
) -> Verdict | None:
    """The verdict when there is nothing to measure (a side has no text, or the texts are
    equal); None when the texts must be compared."""
    if a is None:
        return Verdict(None, 0.0, f"champion has no text{where}")
    if b is None:
        return Verdict(True, 1.0, f"challenger has no text{where}", paths)
    if a == b:
        return IDENTICAL
    return None


class TextComparator:
    name = "text"

    def __init__(
        self,
        *,
        path: str | None = None,
        method: str = "ratio",
        threshold: float = 0.85,
        undecided_between: Sequence[float] | None = None,
        normalize_whitespace: bool = True,
        case_insensitive: bool = False,
        unicode_form: str | None = "NFC",
        max_chars: int = 20_000,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown text method {method!r} (known: {', '.join(METHODS)})")
        self.low, self.high = similarity_band(threshold, undecided_between)
        if max_chars < 1:
            raise ConfigError("max_chars must be >= 1")
        self.method = method
        self.path = path
        self.max_chars = max_chars
        self._similarity = METHODS[method]
        self._select = PathSelector(path) if path else None
        self._normalize = text_normalizer(
            normalize_whitespace=normalize_whitespace,
            case_insensitive=case_insensitive,
            unicode_form=unicode_form,
        )

    def _text(self, output: Any) -> str | None:
        value = self._select(output) if self._select is not None else output
        if value is MISSING:
            return None
        text = as_text(value)
        if self._normalize is not None:
            text = self._normalize(text)
        return text[: self.max_chars]

    def similarity(self, champion: Any, challenger: Any) -> float | None:
        """Similarity in [0, 1]; None when the champion has no text at ``path``."""
        a = self._text(champion)
        if a is None:
            return None
        b = self._text(challenger)
        if b is None:
            return 0.0
        if a == b:
            return 1.0
        return clamp01(self._similarity(a, b))

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        where = f" at {self.path}" if self.path else ""
        a, b = self._text(champion), self._text(challenger)
        settled = settled_verdict(a, b, where, self._paths())
        if settled is not None:
            return settled
        assert a is not None and b is not None
        sim = clamp01(self._similarity(a, b))
        score = round(1.0 - sim, 6)
        if sim >= self.high:
            return Verdict(
                False, score, f"similar{where}: {sim:.3f} >= {self.high:g} ({self.method})"
            )
        if sim < self.low:
            return Verdict(
                True,
                score,
                f"text differs{where}: {sim:.3f} < {self.low:g} ({self.method})",
                self._paths(),
            )
        return Verdict(
            None,
            score,
            f"undecided{where}: {self.low:g} <= {sim:.3f} < {self.high:g} ({self.method})",
        )

    def _paths(self) -> tuple[str, ...]:
        return (self.path,) if self.path else ()
