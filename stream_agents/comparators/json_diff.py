"""Structural JSON comparison: which fields differ, not just whether.

Options:
    ignore_paths:  glob patterns of paths excluded from the decision
                   (``$.id``, ``$.items[*].ts``, ``*.timestamp``).
    abs_tol / rel_tol:  numbers within tolerance are equal.
    unordered_lists:  glob patterns of list paths compared as multisets
                   (``$.tags``; ``*`` for every list).
    max_paths:     how many differing paths are reported (all are counted).

Paths look like ``$.a.b[3].c``. The score is the share of differing leaves.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from stream_agents.comparators.base import IDENTICAL, Verdict, clip

_INDEX = re.compile(r"\[\d+\]")


@lru_cache(maxsize=4096)
def _generic(path: str) -> str:
    """``$.items[3].id`` -> ``$.items[*].id`` (for glob matching)."""
    return _INDEX.sub("[*]", path)


class JsonComparator:
    name = "json"

    def __init__(
        self,
        *,
        ignore_paths: Iterable[str] = (),
        abs_tol: float = 0.0,
        rel_tol: float = 0.0,
        unordered_lists: Iterable[str] = (),
        max_paths: int = 20,
    ) -> None:
        self.ignore_paths = tuple(ignore_paths)
        self.abs_tol = abs_tol
        self.rel_tol = rel_tol
        self.unordered_lists = tuple(unordered_lists)
        self.max_paths = max_paths
        self._ignored_cache: dict[str, bool] = {}
        self._unordered_cache: dict[str, bool] = {}

    def with_ignored(self, extra: Iterable[str]) -> JsonComparator:
        """A copy that also ignores ``extra`` paths (e.g. learned noisy paths)."""
        return JsonComparator(
            ignore_paths=(*self.ignore_paths, *extra),
            abs_tol=self.abs_tol,
            rel_tol=self.rel_tol,
            unordered_lists=self.unordered_lists,
            max_paths=self.max_paths,
        )

    # -- matching helpers ------------------------------------------------------
    def _is_ignored(self, path: str) -> bool:
        hit = self._ignored_cache.get(path)
        if hit is None:
            generic = _generic(path)
            hit = any(
                fnmatch.fnmatchcase(path, pat) or fnmatch.fnmatchcase(generic, pat)
                for pat in self.ignore_paths
            )
            if len(self._ignored_cache) < 100_000:
                self._ignored_cache[path] = hit
        return hit

    def _is_unordered(self, path: str) -> bool:
        hit = self._unordered_cache.get(path)
        if hit is None:
            generic = _generic(path)
            hit = any(
                fnmatch.fnmatchcase(path, pat) or fnmatch.fnmatchcase(generic, pat)
                for pat in self.unordered_lists
            )
            if len(self._unordered_cache) < 100_000:
                self._unordered_cache[path] = hit
        return hit

    def _numbers_equal(self, a: float, b: float) -> bool:
        if a == b:
            return True
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        if self.abs_tol == 0.0 and self.rel_tol == 0.0:
            return False
        return math.isclose(a, b, rel_tol=self.rel_tol, abs_tol=self.abs_tol)

    # -- comparison -------------------------------------------------------------
    def compare(self, champion: Any, challenger: Any) -> Verdict:
        if champion == challenger and not self.ignore_paths:
            return IDENTICAL
        diffs: list[str] = []
        ignored: list[str] = []
        leaves = self._walk("$", champion, challenger, diffs, ignored)
        if not diffs:
            if ignored:
                return Verdict(False, 0.0, "identical outside ignored paths", (), tuple(ignored[:20]))
            return IDENTICAL
        score = min(1.0, len(diffs) / max(leaves, 1))
        shown = diffs[: self.max_paths]
        more = f" (+{len(diffs) - len(shown)} more)" if len(diffs) > len(shown) else ""
        summary = clip(f"{len(diffs)} of {leaves} fields differ: {', '.join(shown)}{more}")
        return Verdict(True, score, summary, tuple(shown), tuple(ignored[:20]))

    def _walk(self, path: str, a: Any, b: Any, diffs: list[str], ignored: list[str]) -> int:
        """Compare a and b at path; returns the number of leaves looked at."""
        if self.ignore_paths and path != "$" and self._is_ignored(path):
            if a != b:
                ignored.append(path)
            return 0
        if isinstance(a, dict) and isinstance(b, dict):
            leaves = 0
            for key in a.keys() | b.keys():
                sub = f"{path}.{key}"
                if key not in a or key not in b:
                    if self.ignore_paths and self._is_ignored(sub):
                        ignored.append(sub)
                        continue
                    diffs.append(sub)
                    leaves += 1
                    continue
                leaves += self._walk(sub, a[key], b[key], diffs, ignored)
            return leaves
        if isinstance(a, list) and isinstance(b, list):
            if self.unordered_lists and self._is_unordered(path):
                return self._walk_unordered(path, a, b, diffs)
            leaves = 0
            for i in range(max(len(a), len(b))):
                sub = f"{path}[{i}]"
                if i >= len(a) or i >= len(b):
                    diffs.append(sub)
                    leaves += 1
                    continue
                leaves += self._walk(sub, a[i], b[i], diffs, ignored)
            return leaves
        numeric = (int, float)
        if (
            isinstance(a, numeric)
            and isinstance(b, numeric)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
        ):
            if not self._numbers_equal(a, b):
                diffs.append(path)
            return 1
        if a != b or type(a) is not type(b):
            diffs.append(path)
        return 1

    def _walk_unordered(self, path: str, a: list[Any], b: list[Any], diffs: list[str]) -> int:
        remaining = list(b)
        unmatched = 0
        for item in a:
            for j, other in enumerate(remaining):
                probe: list[str] = []
                self._walk(path, item, other, probe, [])
                if not probe:
                    del remaining[j]
                    break
            else:
                unmatched += 1
        extra = len(remaining)
        if unmatched or extra:
            diffs.append(f"{path}[~{max(unmatched, extra)}]")
        return max(len(a), len(b), 1)
