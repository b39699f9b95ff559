"""JSON path globs for redaction rules: the comparators' syntax, standard library only.

Rendered paths look like ``$.a.b[3].c``; a key that is not a plain name is
quoted: ``$["a.b"]``. Globs:

* ``*`` matches any run of characters, dots included (``*.email`` is an
  ``email`` key at any depth; ``$.items[*].*`` every field of every item);
* ``[*]`` matches any list index, ``[2]`` only index 2;
* a pattern without a leading ``$`` or ``*`` is rooted: ``customer.email``
  means ``$.customer.email``.

A rule applies to the value at the first path (from the root down) that it
matches, so ``$.customer`` covers everything below ``$.customer``.
"""

from __future__ import annotations

import json
import re

from shadowstream.core.errors import ConfigError

_PLAIN_KEY = re.compile(r"^[^.\[\]\"*\s]+$")


def key_segment(key: str) -> str:
    """The path segment of a dict key: ``.name`` or ``["odd key"]``."""
    if _PLAIN_KEY.match(key):
        return "." + key
    return "[" + json.dumps(key, ensure_ascii=False) + "]"


def glob_regex(pattern: str, empty_error: str = "empty redaction path") -> str:
    """A glob as a regular expression over rendered paths (no anchors); the comparators'
    path patterns use it too. An empty pattern raises ConfigError(``empty_error``)."""
    text = pattern.strip()
    if not text:
        raise ConfigError(empty_error)
    if not text.startswith(("$", "*")):
        text = ("$" if text.startswith("[") else "$.") + text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("[*]", i):
            out.append(r"\[\d+\]")
            i += 3
        elif text[i] == "*":
            while i < len(text) and text[i] == "*":
                i += 1
            out.append(".*")
        else:
            out.append(re.escape(text[i]))
            i += 1
    return "".join(out)


class RuleMatcher:
    """Which rule (by index, first wins) matches a rendered path; -1 for none. Cached."""

    def __init__(self, patterns: list[str], max_cache: int = 65_536) -> None:
        self.patterns = patterns
        self._regex = (
            re.compile(
                "|".join(f"(?P<r{i}>{glob_regex(p)})" for i, p in enumerate(patterns)),
                re.DOTALL,
            )
            if patterns
            else None
        )
        self._cache: dict[str, int] = {}
        self._max_cache = max_cache

    def __bool__(self) -> bool:
        return self._regex is not None

    def __call__(self, path: str) -> int:
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        found = -1
        if self._regex is not None:
            match = self._regex.fullmatch(path)
            if match is not None and match.lastgroup is not None:
                found = int(match.lastgroup[1:])
        if len(self._cache) >= self._max_cache:
            self._cache.clear()
        self._cache[path] = found
        return found
