"""The comparator contract: decide whether a challenger's output diverges."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a comparator concluded about one pair of outputs.

    ``diverged`` is None when the comparator cannot decide (a cascade then asks
    the next one). ``score`` is in [0, 1]: 0 identical, 1 completely different.
    ``summary`` is short and human-readable; ``paths`` lists differing JSON
    paths and ``ignored`` the paths excluded from the decision. ``by`` names
    the comparator that decided when it is not the configured one (a cascade
    step). ``measures`` are named values stored with the comparison for reports
    (the ranked-list comparator's ``rbo@10,p=0.9``, ``jaccard@10``, ...).
    """

    diverged: bool | None
    score: float
    summary: str = ""
    paths: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    by: str = ""
    measures: tuple[tuple[str, float], ...] = ()


IDENTICAL = Verdict(False, 0.0, "identical")


@runtime_checkable
class Comparator(Protocol):
    """Compares two decoded outputs (JSON values: dict, list, str, number, bool, None)."""

    name: str

    def compare(self, champion: Any, challenger: Any) -> Verdict: ...


@runtime_checkable
class NoiseAware(Protocol):
    """A comparator that can leave out paths learned as noisy (see shadowstream.stream_agents.noise).

    ``noisy`` holds generic paths (``$.items[*].id``); a path is left out when
    it, or one of its ancestors, is in the set.
    """

    name: str

    def compare(self, champion: Any, challenger: Any) -> Verdict: ...

    def compare_ignoring(self, champion: Any, challenger: Any, noisy: Set[str]) -> Verdict: ...


def clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_repr(value: Any, limit: int = 60) -> str:
    """A value as it would appear in JSON, clipped: for summaries."""
    try:
        text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    except TypeError:
        text = repr(value)
    return clip(text, limit)


def canonical(value: Any) -> bytes | None:
    """Canonical JSON bytes (sorted keys), or None when orjson cannot encode the value.

    Unlike ``==``, it tells ``true`` from ``1`` and ``1`` from ``1.0``.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def clamp01(score: float) -> float:
    return 0.0 if score < 0.0 else 1.0 if score > 1.0 else score
