"""Text normalization shared by comparators: unicode form, whitespace, case."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, Literal, cast

from shadowstream.core.errors import ConfigError

UnicodeForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def text_normalizer(
    *,
    normalize_whitespace: bool = False,
    case_insensitive: bool = False,
    unicode_form: str | None = None,
) -> Callable[[str], str] | None:
    """A ``str -> str`` normalizer, or None when nothing is asked (the fast path).

    Order: unicode form first (so composed and decomposed accents agree), then
    whitespace runs collapse to one space and the ends are stripped, then
    ``casefold`` (which also folds ``ß`` to ``ss``).
    """
    if unicode_form is not None and unicode_form not in _FORMS:
        raise ConfigError(f"unicode_form must be one of {', '.join(_FORMS)}, got {unicode_form!r}")
    if not (normalize_whitespace or case_insensitive or unicode_form):
        return None
    form = cast(UnicodeForm | None, unicode_form)

    def normalize(text: str) -> str:
        if form is not None and not text.isascii():  # ASCII is stable in every form
            text = unicodedata.normalize(form, text)
        if normalize_whitespace:
            text = " ".join(text.split())
        if case_insensitive:
            text = text.casefold()
        return text

    return normalize


def normalize_deep(value: Any, normalize: Callable[[str], str]) -> Any:
    """Apply a string normalizer to every string (not keys) in a JSON value."""
    if isinstance(value, str):
        return normalize(value)
    if isinstance(value, dict):
        return {k: normalize_deep(v, normalize) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_deep(v, normalize) for v in value]
    return value
