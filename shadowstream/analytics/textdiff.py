"""Where two answers differ, for people: JSON per path, text word by word.

* Both answers JSON objects or arrays: every leaf path whose value differs
  (``$.items[2].label``), added or removed, with both values.
* Otherwise (free text, a JSON string, or one side not JSON): a word-level
  diff (``difflib.SequenceMatcher`` over words and the whitespace between
  them), as runs of equal / deleted / inserted / replaced text, so a renderer
  can show both sides with the changed words highlighted.

Pure functions on the stored text; the CLI (``shadow show``) and the HTML
report render the same :class:`Diff`.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_TOKENS = 20_000  # per side; longer texts are diffed on their start
MAX_PATHS = 500
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)
_MISSING = object()

Op = Literal["equal", "delete", "insert", "replace"]


@dataclass(frozen=True)
class PathChange:
    path: str
    change: Literal["changed", "added", "removed"]
    champion: str | None  # the value as JSON (None: absent)
    challenger: str | None


@dataclass(frozen=True)
class TextRun:
    op: Op
    champion: str  # this run's text on the champion's side ("" for an insert)
    challenger: str  # ... on the challenger's side ("" for a delete)


@dataclass(frozen=True)
class Diff:
    kind: Literal["json", "text", "identical", "missing"]
    paths: list[PathChange] = field(default_factory=list)
    runs: list[TextRun] = field(default_factory=list)
    truncated: bool = False

    @property
    def changed(self) -> int:
        if self.kind == "json":
            return len(self.paths)
        return sum(1 for r in self.runs if r.op != "equal")


def parse(text: str | None) -> Any:
    if text is None:
        return _MISSING
    try:
        return json.loads(text)
    except ValueError:
        return text


def as_text(value: Any) -> str:
    """A decoded output as people read it: strings as they are, the rest as JSON."""
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _walk(a: Any, b: Any, path: str, out: list[PathChange]) -> None:
    if len(out) >= MAX_PATHS:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            name = str(key)
            plain = re.fullmatch(r"[A-Za-z_]\w*", name)
            child = f"{path}.{name}" if plain else f"{path}[{json.dumps(name)}]"
            _walk(a.get(key, _MISSING), b.get(key, _MISSING), child, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            left = a[i] if i < len(a) else _MISSING
            right = b[i] if i < len(b) else _MISSING
            _walk(left, right, f"{path}[{i}]", out)
        return
    if a is _MISSING:
        out.append(PathChange(path, "added", None, _json(b)))
    elif b is _MISSING:
        out.append(PathChange(path, "removed", _json(a), None))
    elif type(a) is not type(b) or a != b:
        out.append(PathChange(path, "changed", _json(a), _json(b)))


def json_paths(a: Any, b: Any) -> list[PathChange]:
    out: list[PathChange] = []
    _walk(a, b, "$", out)
    return out


def word_runs(a: str, b: str) -> tuple[list[TextRun], bool]:
    left, right = _TOKEN.findall(a), _TOKEN.findall(b)
    truncated = len(left) > MAX_TOKENS or len(right) > MAX_TOKENS
    left, right = left[:MAX_TOKENS], right[:MAX_TOKENS]
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    runs = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        runs.append(TextRun(op, "".join(left[i1:i2]), "".join(right[j1:j2])))
    return runs, truncated


def diff_outputs(champion: str | None, challenger: str | None) -> Diff:
    """The difference between two stored outputs (JSON text, or plain text)."""
    if champion is None or challenger is None:
        return Diff("missing")
    if champion == challenger:
        return Diff("identical")
    a, b = parse(champion), parse(challenger)
    if isinstance(a, dict | list) and isinstance(b, dict | list):
        paths = json_paths(a, b)
        if not paths:
            return Diff("identical")
        return Diff("json", paths=paths, truncated=len(paths) >= MAX_PATHS)
    runs, truncated = word_runs(as_text(a), as_text(b))
    if all(r.op == "equal" for r in runs):
        return Diff("identical")
    return Diff("text", runs=runs, truncated=truncated)
