"""Structural JSON comparison: which fields differ, not just whether.

Options:
    ignore_paths:     globs of paths left out of the decision (``$.id``,
                      ``$.items[*].ts``, ``*.timestamp``; see comparators.paths).
    abs_tol / rel_tol: numbers within tolerance are equal (``math.isclose``).
    unordered_lists:  globs of list paths compared as multisets (``$.tags``;
                      ``*`` for every list).
    normalize_whitespace / case_insensitive / unicode_form:
                      string values are compared after normalization.
    missing_as_null:  an absent key equals an explicit ``null``.
    max_paths:        how many differing paths are reported (all are counted).

Paths look like ``$.a.b[3].c``. ``true`` is not ``1`` (JSON types are
respected), but ``1`` equals ``1.0``. The score is the share of differing
leaves (of the larger output). Ignored paths are reported only where they
actually differed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import IDENTICAL, Verdict, canonical, clip
from shadowstream.stream_agents.comparators.normalize import text_normalizer
from shadowstream.stream_agents.comparators.paths import PathMatcher, key_segment

_EMPTY: frozenset[str] = frozenset()
# unordered lists larger than this (items x items) are compared by canonical form only
_MAX_PAIRWISE = 10_000


@dataclass(slots=True)
class JsonDiff:
    """Everything a structural comparison found."""

    paths: list[str]  # differing paths, in document order
    differing: int  # differing leaves (an unordered list counts its unmatched items)
    ignored: dict[str, bool]  # generic path -> learned as noise (False: configured)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same JSON type, decided in C (no walk).

    ``==`` alone says ``True == 1``; for containers that could hide such a
    pair, canonical JSON bytes settle it.
    """
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b) or a != b:
        return False
    return (ta is not dict and ta is not list) or canonical(a) == canonical(b)


def count_leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_leaves(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(count_leaves(v) for v in value) or 1
    return 1


class _Walk:
    """One comparison's traversal state (kept off the comparator: it is shared).

    Equal subtrees are skipped before any path string is built, so the cost
    grows with what differs, not with the size of the output.
    """

    __slots__ = ("check", "cmp", "diff", "noisy")

    def __init__(self, cmp: JsonComparator, noisy: Set[str]) -> None:
        self.cmp = cmp
        self.noisy = noisy
        self.check = bool(noisy) or bool(cmp._ignore)
        self.diff = JsonDiff([], 0, {})

    def _left_out(self, path: str, gpath: str) -> bool | None:
        """None if compared; True if learned as noise; False if ignored by config."""
        if gpath in self.noisy:
            return True
        if self.cmp._ignore and self.cmp._ignore(path):
            return False
        return None

    def _differs(self, path: str, count: int = 1) -> None:
        self.diff.paths.append(path)
        self.diff.differing += count

    def walk(self, path: str, gpath: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            self._dicts(path, gpath, a, b)
        elif isinstance(a, list) and isinstance(b, list):
            if self.cmp._unordered and self.cmp._unordered(path):
                self._unordered(path, gpath, a, b)
            else:
                self._lists(path, gpath, a, b)
        elif not self.cmp._leaf_equal(a, b):
            self._differs(path)

    def _dicts(self, path: str, gpath: str, a: dict[str, Any], b: dict[str, Any]) -> None:
        missing_as_null = self.cmp.missing_as_null
        for key, av in a.items():
            present = key in b
            if present and _same(av, b[key]):
                continue
            seg = key_segment(key)
            if self.check:
                learned = self._left_out(path + seg, gpath + seg)
                if learned is not None:
                    self.diff.ignored.setdefault(gpath + seg, learned)
                    continue
            if present:
                self.walk(path + seg, gpath + seg, av, b[key])
            elif not (missing_as_null and av is None):
                self._differs(path + seg)
        for key, bv in b.items():
            if key in a:
                continue
            seg = key_segment(key)
            if self.check:
                learned = self._left_out(path + seg, gpath + seg)
                if learned is not None:
                    self.diff.ignored.setdefault(gpath + seg, learned)
                    continue
            if not (missing_as_null and bv is None):
                self._differs(path + seg)

    def _lists(self, path: str, gpath: str, a: list[Any], b: list[Any]) -> None:
        gsub = gpath + "[*]"
        common = min(len(a), len(b))
        for i in range(max(len(a), len(b))):
            if i < common and _same(a[i], b[i]):
                continue
            sub = f"{path}[{i}]"
            if self.check:
                learned = self._left_out(sub, gsub)
                if learned is not None:
                    self.diff.ignored.setdefault(gsub, learned)
                    continue
            if i < common:
                self.walk(sub, gsub, a[i], b[i])
            else:
                self._differs(sub)

    def _unordered(self, path: str, gpath: str, a: list[Any], b: list[Any]) -> None:
        gsub = gpath + "[*]"
        if self.check and (a or b):
            learned = self._left_out(path + "[0]", gsub)
            if learned is not None:
                self.diff.ignored.setdefault(gsub, learned)
                return
        unmatched = self.cmp._multiset_mismatch(path, gsub, a, b, self.noisy)
        if unmatched:
            self._differs(path + "[*]", unmatched)


class JsonComparator:
    name = "json"

    def __init__(
        self,
        *,
        ignore_paths: Iterable[str] = (),
        abs_tol: float = 0.0,
        rel_tol: float = 0.0,
        unordered_lists: Iterable[str] = (),
        normalize_whitespace: bool = False,
        case_insensitive: bool = False,
        unicode_form: str | None = None,
        missing_as_null: bool = False,
        max_paths: int = 20,
    ) -> None:
        if isinstance(ignore_paths, str) or isinstance(unordered_lists, str):
            raise ConfigError("ignore_paths and unordered_lists are lists of globs, not a string")
        if abs_tol < 0 or rel_tol < 0:
            raise ConfigError("abs_tol and rel_tol must be >= 0")
        if max_paths < 1:
            raise ConfigError("max_paths must be >= 1")
        self.ignore_paths = tuple(ignore_paths)
        self.unordered_lists = tuple(unordered_lists)
        self.abs_tol = float(abs_tol)
        self.rel_tol = float(rel_tol)
        self.missing_as_null = missing_as_null
        self.max_paths = max_paths
        self._ignore = PathMatcher(self.ignore_paths)
        self._unordered = PathMatcher(self.unordered_lists)
        self._normalize: Callable[[str], str] | None = text_normalizer(
            normalize_whitespace=normalize_whitespace,
            case_insensitive=case_insensitive,
            unicode_form=unicode_form,
        )
        self._tolerant = self.abs_tol > 0 or self.rel_tol > 0
        self._options: dict[str, Any] = dict(
            ignore_paths=self.ignore_paths,
            abs_tol=self.abs_tol,
            rel_tol=self.rel_tol,
            unordered_lists=self.unordered_lists,
            normalize_whitespace=normalize_whitespace,
            case_insensitive=case_insensitive,
            unicode_form=unicode_form,
            missing_as_null=missing_as_null,
        )

    def without_ignores(self) -> JsonComparator:
        """A copy with the same structural options and no ignored paths."""
        options = dict(self._options)
        options["ignore_paths"] = ()
        return JsonComparator(**options, max_paths=self.max_paths)

    def with_ignored(self, extra: Iterable[str]) -> JsonComparator:
        """A copy that also ignores ``extra`` globs."""
        options = dict(self._options)
        options["ignore_paths"] = (*self.ignore_paths, *extra)
        return JsonComparator(**options, max_paths=self.max_paths)

    # -- leaves ----------------------------------------------------------------------
    def _leaf_equal(self, a: Any, b: Any) -> bool:
        ta, tb = type(a), type(b)
        if ta is bool or tb is bool:
            return ta is tb and a == b
        if (ta is int or ta is float) and (tb is int or tb is float):
            if a == b:
                return True
            if ta is float and tb is float and math.isnan(a) and math.isnan(b):
                return True
            return self._tolerant and math.isclose(a, b, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        if ta is str and tb is str:
            if a == b:
                return True
            return self._normalize is not None and self._normalize(a) == self._normalize(b)
        return ta is tb and bool(a == b)

    def _multiset_mismatch(
        self, path: str, gpath: str, a: list[Any], b: list[Any], noisy: Set[str]
    ) -> int:
        """How many items of the larger list have no equal partner in the other."""
        keys_a = [canonical(x) for x in a]
        keys_b = [canonical(x) for x in b]
        if None not in keys_a and None not in keys_b:
            left = Counter(keys_a)
            left.subtract(keys_b)
            rest_a = [x for x, k in zip(a, keys_a, strict=True) if _take(left, k)]
            right = Counter(keys_b)
            right.subtract(keys_a)
            rest_b = [x for x, k in zip(b, keys_b, strict=True) if _take(right, k)]
        else:
            rest_a, rest_b = list(a), list(b)
        if not rest_a or not rest_b or len(rest_a) * len(rest_b) > _MAX_PAIRWISE:
            return max(len(rest_a), len(rest_b))
        # tolerance, normalization or ignored fields may still pair the rest
        unmatched = 0
        for i, item in enumerate(rest_a):
            for j, other in enumerate(rest_b):
                probe = _Walk(self, noisy)
                probe.walk(f"{path}[{i}]", gpath, item, other)
                if not probe.diff.paths:
                    del rest_b[j]
                    break
            else:
                unmatched += 1
        return max(unmatched, len(rest_b))

    # -- comparison ----------------------------------------------------------------------
    def diff(self, champion: Any, challenger: Any, noisy: Set[str] = _EMPTY) -> JsonDiff:
        """Every differing path (uncapped); the building block of :meth:`compare`."""
        walk = _Walk(self, noisy)
        if not _same(champion, challenger):
            walk.walk("$", "$", champion, challenger)
        return walk.diff

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        return self.compare_ignoring(champion, challenger, _EMPTY)

    def compare_ignoring(self, champion: Any, challenger: Any, noisy: Set[str]) -> Verdict:
        found = self.diff(champion, challenger, noisy)
        ignored = _ignored_summary(found.ignored)
        if not found.paths:
            if not found.ignored:
                return IDENTICAL
            return Verdict(
                False, 0.0, clip(f"identical except ignored {ignored}"), (), tuple(found.ignored)
            )
        leaves = max(count_leaves(champion), count_leaves(challenger), found.differing)
        score = found.differing / leaves
        shown = found.paths[: self.max_paths]
        more = f" (+{len(found.paths) - len(shown)} more)" if len(found.paths) > len(shown) else ""
        summary = f"{found.differing} of {leaves} fields differ: {', '.join(shown)}{more}"
        if found.ignored:
            summary += f"; ignored {ignored}"
        return Verdict(True, score, clip(summary), tuple(shown), tuple(found.ignored))


def _take(counter: Counter[Any], key: Any) -> bool:
    """True for the items of a list that the other list does not have (multiset minus)."""
    if counter[key] > 0:
        counter[key] -= 1
        return True
    return False


def _ignored_summary(ignored: dict[str, bool], limit: int = 5) -> str:
    items = [f"{p} (noise)" if learned else p for p, learned in ignored.items()]
    more = f" +{len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
