"""Exact match, optionally after normalizing whitespace, case and unicode."""

from __future__ import annotations

import unicodedata
from typing import Any

from stream_agents.comparators.base import IDENTICAL, Verdict, clip


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

    def _norm(self, value: Any) -> Any:
        if isinstance(value, str):
            if self.unicode_form:
                value = unicodedata.normalize(self.unicode_form, value)  # type: ignore[arg-type]
            if self.normalize_whitespace:
                value = " ".join(value.split())
            if self.case_insensitive:
                value = value.casefold()
            return value
        if isinstance(value, dict):
            return {k: self._norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._norm(v) for v in value]
        return value

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        if champion == challenger:
            return IDENTICAL
        if (
            self.normalize_whitespace or self.case_insensitive or self.unicode_form
        ) and self._norm(champion) == self._norm(challenger):
            return IDENTICAL
        return Verdict(True, 1.0, clip(f"{_short(champion)} != {_short(challenger)}"))


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
