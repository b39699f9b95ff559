"""The comparator contract: decide whether a challenger's output diverges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a comparator concluded about one pair of outputs.

    ``diverged`` is None when the comparator cannot decide (a cascade then asks
    the next one). ``score`` is in [0, 1]: 0 identical, 1 completely different.
    ``summary`` is short and human-readable; ``paths`` lists differing JSON
    paths and ``ignored`` the paths excluded from the decision.
    """

    diverged: bool | None
    score: float
    summary: str = ""
    paths: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


IDENTICAL = Verdict(False, 0.0, "identical")


@runtime_checkable
class Comparator(Protocol):
    """Compares two decoded outputs (JSON values: dict, list, str, number, bool, None)."""

    name: str

    def compare(self, champion: Any, challenger: Any) -> Verdict: ...


def clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
