"""Exact match, optionally after normalizing whitespace, case and unicode.

Strings are compared as text; anything else as canonical JSON (key order does
not matter, JSON types do: ``true`` is not ``1``, ``1`` is not ``1.0``).
Normalization applies to every string value, nested ones included. A
mismatch on text names the first differing character.
"""

from __future__ import annotations

from typing import Any

from shadowstream.stream_agents.comparators.base import (
    IDENTICAL,
    Verdict,
    canonical,
    clip,
    short_repr,
)
from shadowstream.stream_agents.comparators.normalize import normalize_deep, text_normalizer


class ExactComparator:
    name = "exact"

    def __init__(
        self,
        *,
        normalize_whitespace: bool = False,
        case_insensitive: bool = False,
        unicode_form: str | None = None,
    ) -> None:
        self.normalize_whitespace = normalize_whitespace
        self.case_insensitive = case_insensitive
        self.unicode_form = unicode_form
        self._normalize = text_normalizer(
            normalize_whitespace=normalize_whitespace,
            case_insensitive=case_insensitive,
            unicode_form=unicode_form,
        )

    def _same(self, a: Any, b: Any) -> bool:
        if type(a) is str and type(b) is str:
            return a == b
        return a == b and canonical(a) == canonical(b)

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        if self._same(champion, challenger):
            return IDENTICAL
        if self._normalize is not None:
            champion = normalize_deep(champion, self._normalize)
            challenger = normalize_deep(challenger, self._normalize)
            if self._same(champion, challenger):
                return IDENTICAL
        if isinstance(champion, str) and isinstance(challenger, str):
            return Verdict(True, 1.0, _text_mismatch(champion, challenger))
        return Verdict(True, 1.0, clip(f"{short_repr(champion)} != {short_repr(challenger)}"))


def _text_mismatch(a: str, b: str, context: int = 20) -> str:
    """Where two texts first differ, with a little context (after normalization)."""
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = max(0, at - context)
    left = a[start : at + context]
    right = b[start : at + context]
    prefix = "…" if start else ""
    return clip(f"texts differ at char {at}: {prefix}{left!r} vs {prefix}{right!r}")
