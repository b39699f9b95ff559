"""JSON paths: how comparators name a place in an output, select one, and match globs.

Rendered paths look like ``$.a.b[3].c``; a key that is not a plain name is
quoted: ``$["a.b"]``. The *generic* form replaces indexes with ``[*]``
(``$.items[*].id``): learned noise and reports use it, so "the id of every
item" is one path, not one per index.

Selectors (``path`` options, HTTP response mapping) accept ``$.a.b[0].c``,
``a.b.0.c`` and ``$["odd.key"]``; negative indexes count from the end.

Globs (``ignore_paths``, ``unordered_lists``) are compiled once into one
regular expression:

* ``*`` matches any run of characters, dots included (``*.timestamp`` is a
  ``timestamp`` key at any depth);
* ``[*]`` matches any list index, ``[2]`` only index 2;
* a pattern without a leading ``$`` or ``*`` is rooted: ``meta.id`` means
  ``$.meta.id``;
* a pattern also matches everything below what it names (``$.debug``
  covers ``$.debug.trace[0]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import orjson

from shadowstream.core.errors import ConfigError
from shadowstream.producers.redaction.paths import glob_regex

ROOT: Final = "$"
_PLAIN_KEY = re.compile(r"^[^.\[\]\"*\s]+$")
_SELECTOR_TOKEN = re.compile(r'\.([^.\[\]]+)|\[(-?\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""What :func:`select` returns for a path that is not there (distinct from JSON null)."""


_SEGMENTS: dict[str, str] = {}
_MAX_SEGMENTS = 65_536


def key_segment(key: str) -> str:
    """The path segment for a dict key: ``.name`` or ``["odd key"]`` (cached, bounded)."""
    segment = _SEGMENTS.get(key)
    if segment is None:
        segment = "." + key if _PLAIN_KEY.match(key) else "[" + orjson.dumps(key).decode() + "]"
        if len(_SEGMENTS) >= _MAX_SEGMENTS:
            _SEGMENTS.clear()
        _SEGMENTS[key] = segment
    return segment


def generic_path(path: str) -> str:
    """``$.items[3].id`` -> ``$.items[*].id`` (quoted keys are left alone)."""
    if "[" not in path:
        return path
    return _INDEX_OUTSIDE_QUOTES.sub(lambda m: m.group(1) or "[*]", path)


_INDEX_OUTSIDE_QUOTES = re.compile(r'(\["(?:[^"\\]|\\.)*"\])|\[\d+\]')

Step = str | int


def parse_selector(expr: str) -> tuple[Step, ...]:
    """Parse ``$.a[0].b`` / ``a.0.b`` / ``$["x.y"]`` into steps; ConfigError if malformed."""
    text = expr.strip()
    if text in ("", ROOT):
        return ()
    if text.startswith(ROOT):
        text = text[1:]
    elif not text.startswith("["):
        text = "." + text
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        match = _SELECTOR_TOKEN.match(text, pos)
        if match is None:
            raise ConfigError(f"malformed JSON path {expr!r} near {text[pos : pos + 20]!r}")
        name, index, quoted = match.groups()
        if index is not None:
            steps.append(int(index))
        elif quoted is not None:
            steps.append(orjson.loads(f'"{quoted}"'))
        else:
            # "a.0" addresses index 0 when the value there is a list
            steps.append(int(name) if name.lstrip("-").isdigit() else name)
        pos = match.end()
    return tuple(steps)


def select(value: Any, steps: tuple[Step, ...]) -> Any:
    """Follow parsed steps into a decoded JSON value; :data:`MISSING` if absent."""
    for step in steps:
        if isinstance(value, dict):
            key = step if isinstance(step, str) else str(step)
            if key not in value:
                return MISSING
            value = value[key]
        elif isinstance(value, list) and isinstance(step, int):
            if not -len(value) <= step < len(value):
                return MISSING
            value = value[step]
        else:
            return MISSING
    return value


class PathSelector:
    """A path parsed once, applied many times."""

    __slots__ = ("expr", "steps")

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.steps = parse_selector(expr)

    def __call__(self, value: Any) -> Any:
        return select(value, self.steps) if self.steps else value

    def __repr__(self) -> str:
        return f"PathSelector({self.expr!r})"


def _glob_to_regex(pattern: str) -> str:
    """The redaction rules' globs: one syntax for every path pattern."""
    return glob_regex(pattern, "empty path pattern")


class PathMatcher:
    """Does a rendered path fall under any of a set of globs? Compiled once, cached.

    The cache is bounded (paths with indexes are unbounded in number); it is
    simply cleared when full.
    """

    __slots__ = ("_cache", "_max_cache", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str], max_cache: int = 65_536) -> None:
        self.patterns = tuple(patterns)
        self._regex = (
            re.compile(
                "(?:" + "|".join(_glob_to_regex(p) for p in self.patterns) + r")(?:[.\[].*)?",
                re.DOTALL,
            )
            if self.patterns
            else None
        )
        self._cache: dict[str, bool] = {}
        self._max_cache = max_cache

    def __bool__(self) -> bool:
        return self._regex is not None

    def __call__(self, path: str) -> bool:
        hit = self._cache.get(path)
        if hit is None:
            hit = self._regex is not None and self._regex.fullmatch(path) is not None
            if len(self._cache) >= self._max_cache:
                self._cache.clear()
            self._cache[path] = hit
        return hit
