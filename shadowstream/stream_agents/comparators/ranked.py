"""Ranked lists (search, retrieval, recommendations): how far the challenger's ranking moved.

For a rebuilt retrieval index shadowed on live queries: the champion's
results are production's, the challenger queries the rebuilt index.

Options:
    path:       where the ranked list is (``$.results``); default: the output itself.
    id_path:    where each item's id is, inside the item (``$.doc_id``); default:
                the item itself when it is a string or number, else its ``id`` key.
                Ids compare as text: ``17`` and ``"17"`` are the same item.
    score_path: where each item's score is, inside the item (optional). Used by
                ``sort_by_score`` and by ``gain = "score"``.
    sort_by_score: order each list by descending score first (stable), for
                services that do not return their results in rank order.
    k:          depth: only each list's first k items count (default 10).
    measure:    what decides divergence: ``rbo`` (default), ``jaccard``,
                ``overlap`` (shared / k) or ``ndcg``.
    threshold:  the measure below it is a divergence (default 0.8).
    undecided_between: ``[low, high]``, as for ``text``: >= high agrees, < low
                diverges, in between is left to a cascade's next step.
    p:          RBO's persistence (default 0.9: the first 10 ranks carry 86% of
                the weight; WMZ10 Eq. 21).
    gain:       NDCG's relevance, from the champion's list: ``rank`` (default:
                its first item gains m, its last 1), ``binary`` (1 each) or
                ``score`` (the champion's scores; needs score_path).
    short_list: a list shorter than the other (within k) is ``complete``
                (default: the service had nothing more, so its missing places
                match nothing) or a ``prefix`` (it was cut off: RBO extrapolates
                it as WMZ10 Eq. 32 does).
    max_examples: how many new / dropped ids the summary names (default 8).

Every comparison stores all the measures (``measures`` in the comparison
event: ``rbo@10,p=0.9``, ``jaccard@10``, ``overlap@10``, ``shared@10``,
``ndcg@10``), so reports show their distributions whichever one decides.
Duplicate ids keep their first place; items without an id are left out; both
are counted in the summary. score = 1 - the deciding measure.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import Verdict, canonical, clip
from shadowstream.stream_agents.comparators.paths import MISSING, PathSelector
from shadowstream.stream_agents.comparators.ranking import (
    check_persistence,
    jaccard,
    list_diff,
    ndcg,
    rbo_ext,
)
from shadowstream.stream_agents.comparators.text import similarity_band

MEASURES = ("rbo", "jaccard", "overlap", "ndcg")
GAINS = ("rank", "binary", "score")


class _Pad:
    """A place a complete short list does not have: equal to nothing else."""

    __slots__ = ()


class RankedList:
    """One side's ranked ids, cut to k, with what was left out on the way."""

    __slots__ = ("duplicates", "ids", "scores", "without_id")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.scores: dict[str, float] = {}
        self.duplicates = 0
        self.without_id = 0


def item_key(value: Any) -> str | None:
    """An item id as text (None when there is none)."""
    if value is None or value is MISSING:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    encoded = canonical(value)
    return encoded.decode() if encoded is not None else str(value)


class RankedListComparator:
    name = "ranked"
    stores_measures = True  # identical outputs are measured too (ComparisonBuilder)

    def __init__(
        self,
        *,
        path: str | None = None,
        id_path: str | None = None,
        score_path: str | None = None,
        sort_by_score: bool = False,
        k: int = 10,
        measure: str = "rbo",
        threshold: float = 0.8,
        undecided_between: Sequence[float] | None = None,
        p: float = 0.9,
        gain: str = "rank",
        short_list: str = "complete",
        max_examples: int = 8,
    ) -> None:
        if measure not in MEASURES:
            raise ConfigError(f"unknown measure {measure!r} (known: {', '.join(MEASURES)})")
        if gain not in GAINS:
            raise ConfigError(f"unknown gain {gain!r} (known: {', '.join(GAINS)})")
        if short_list not in ("complete", "prefix"):
            raise ConfigError("short_list must be 'complete' or 'prefix'")
        if (sort_by_score or gain == "score") and not score_path:
            raise ConfigError("sort_by_score and gain = 'score' need score_path")
        if not 1 <= k <= 10_000:
            raise ConfigError("k must be in [1, 10000]")
        if max_examples < 0:
            raise ConfigError("max_examples must be >= 0")
        try:
            self.p = check_persistence(p)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.low, self.high = similarity_band(threshold, undecided_between)
        self.path = path
        self.k = k
        self.measure = measure
        self.gain = gain
        self.short_list = short_list
        self.sort_by_score = sort_by_score
        self.max_examples = max_examples
        self._list = PathSelector(path) if path else None
        self._id = PathSelector(id_path) if id_path else None
        self._score = PathSelector(score_path) if score_path else None
        self.keys = {
            "rbo": f"rbo@{k},p={self.p:g}",
            "jaccard": f"jaccard@{k}",
            "overlap": f"overlap@{k}",
            "shared": f"shared@{k}",
            "ndcg": f"ndcg@{k}",
        }

    # -- extraction -----------------------------------------------------------------------
    def _item_id(self, item: Any) -> str | None:
        if self._id is not None:
            return item_key(self._id(item))
        if isinstance(item, dict):
            return item_key(item.get("id"))
        if isinstance(item, list):
            return None
        return item_key(item)

    def _item_score(self, item: Any) -> float | None:
        if self._score is None:
            return None
        value = self._score(item)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    def ranked(self, output: Any) -> RankedList | None:
        """The ranked ids at ``path``, cut to k; None when there is no list there."""
        items = self._list(output) if self._list is not None else output
        if not isinstance(items, list):
            return None
        scored: list[tuple[str, float | None]] = []
        out = RankedList()
        for item in items:
            key = self._item_id(item)
            if key is None:
                out.without_id += 1
                continue
            scored.append((key, self._item_score(item)))
        if self.sort_by_score:
            scored.sort(key=lambda pair: -pair[1] if pair[1] is not None else float("inf"))
        seen: set[str] = set()
        for key, score in scored:
            if key in seen:
                out.duplicates += 1
                continue
            seen.add(key)
            if len(out.ids) < self.k:
                out.ids.append(key)
                if score is not None:
                    out.scores[key] = score
        return out

    # -- measuring ------------------------------------------------------------------------
    def measures(self, champion: RankedList, challenger: RankedList) -> dict[str, float]:
        """Every measure, keyed as stored (``rbo@10,p=0.9``, ...); NDCG left out when undefined."""
        a, b = champion.ids, challenger.ids
        out = {
            self.keys["rbo"]: rbo_ext(*self._rbo_lists(a, b), self.p),
            self.keys["jaccard"]: jaccard(a, b),
            self.keys["overlap"]: len(set(a) & set(b)) / self.k if a or b else 1.0,
            self.keys["shared"]: float(len(set(a) & set(b))),
        }
        gains: dict[Hashable, float] | None = None
        if self.gain == "binary":
            gains = dict.fromkeys(a, 1.0)
        elif self.gain == "score":
            gains = {key: champion.scores.get(key, 0.0) for key in a}
        value = ndcg(a, b, gains) if a or not b else 0.0  # production had nothing: 0
        if value is not None:
            out[self.keys["ndcg"]] = value
        return {key: round(v, 6) for key, v in out.items()}

    def _rbo_lists(self, a: list[str], b: list[str]) -> tuple[Sequence[Any], Sequence[Any]]:
        if self.short_list == "prefix" or len(a) == len(b) or not a or not b:
            return a, b
        longer = max(len(a), len(b))
        pad = [_Pad() for _ in range(longer - min(len(a), len(b)))]
        return (a + pad, b) if len(a) < len(b) else (a, b + pad)

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        where = f" at {self.path}" if self.path else ""
        ranked_a = self.ranked(champion)
        if ranked_a is None:
            return Verdict(None, 0.0, f"champion has no list{where}")
        ranked_b = self.ranked(challenger)
        if ranked_b is None:
            return Verdict(True, 1.0, f"challenger has no list{where}", self._paths())
        values = self.measures(ranked_a, ranked_b)
        measures = tuple(values.items())
        key = self.keys[self.measure]
        value = values.get(key)
        notes = self._notes(ranked_a, ranked_b)
        if value is None:
            return Verdict(
                None, 0.0, clip(f"{key} undefined (no gain in the champion's list); {notes}", 500),
                measures=measures,
            )  # fmt: skip
        score = round(1.0 - value, 6)
        if value >= self.high:
            head = f"{key} {value:.3f} >= {self.high:g}"
            diverged: bool | None = False
        elif value < self.low:
            head = f"{key} {value:.3f} < {self.low:g}"
            diverged = True
        else:
            head = f"undecided: {self.low:g} <= {key} {value:.3f} < {self.high:g}"
            diverged = None
        paths = self._paths() if diverged else ()
        summary = clip(f"{head}{where}; {notes}", 500)
        return Verdict(diverged, score, summary, paths, measures=measures)

    def _notes(self, a: RankedList, b: RankedList) -> str:
        diff = list_diff(a.ids, b.ids)
        k = self.k
        parts = []
        if diff.new:
            parts.append(f"new in top-{k}: {self._names(diff.new)}")
        if diff.dropped:
            parts.append(f"dropped from top-{k}: {self._names(diff.dropped)}")
        if not diff.new and not diff.dropped:
            same = "same order" if a.ids == b.ids else "same items, reordered"
            parts.append(f"{same} in top-{k} ({len(a.ids)} items)")
        elif len(a.ids) != len(b.ids):
            parts.append(f"{len(a.ids)} vs {len(b.ids)} items")
        for side, ranked in (("champion", a), ("challenger", b)):
            if ranked.duplicates:
                parts.append(f"{ranked.duplicates} duplicate ids in the {side}'s list ignored")
            if ranked.without_id:
                parts.append(f"{ranked.without_id} items without an id in the {side}'s list")
        return "; ".join(parts)

    def _names(self, ids: tuple[Hashable, ...]) -> str:
        shown = ", ".join(clip(str(i), 40) for i in ids[: self.max_examples])
        more = len(ids) - self.max_examples
        return f"{shown}, +{more} more" if more > 0 else shown

    def _paths(self) -> tuple[str, ...]:
        return (self.path,) if self.path else ()
