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

MAX_CHARS = 200_000  # per side; longer texts are diffed on their start
MAX_BLOCK_TOKENS = 6_000  # a changed block of more words is shown as one replacement
MAX_PATHS = 500
# words, punctuation and whitespace as tokens of their own (a word diff runs only inside
# the sentences that changed, so the many whitespace tokens cost little)
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)
# a sentence (up to . ! ? ; : before whitespace) with the whitespace after it
_SENTENCE = re.compile(r".+?(?:[.!?;:](?=\s|$)|$)\s*", re.S)
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


def _segments(text: str) -> list[str]:
    """Lines, or sentences for text with few lines (each keeps its trailing whitespace)."""
    lines = text.splitlines(keepends=True)
    if len(lines) >= 4:
        return lines
    return [s for s in _SENTENCE.findall(text) if s]


def _words(a: str, b: str) -> list[TextRun]:
    left, right = _TOKEN.findall(a), _TOKEN.findall(b)
    if len(left) + len(right) > MAX_BLOCK_TOKENS:  # bounded time: shown as one replacement
        return [TextRun("replace", a, b)]
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    return [
        TextRun(op, "".join(left[i1:i2]), "".join(right[j1:j2]))
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def word_runs(a: str, b: str) -> tuple[list[TextRun], bool]:
    """Segments (lines or sentences) first, then words inside the segments that changed:
    fast on long answers, where a word-level diff of the whole text would be quadratic."""
    truncated = len(a) > MAX_CHARS or len(b) > MAX_CHARS
    left, right = _segments(a[:MAX_CHARS]), _segments(b[:MAX_CHARS])
    runs: list[TextRun] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        champion, challenger = "".join(left[i1:i2]), "".join(right[j1:j2])
        if op == "replace":
            runs.extend(_words(champion, challenger))
        else:
            runs.append(TextRun(op, champion, challenger))
    return _merged(runs), truncated


def _merged(runs: list[TextRun]) -> list[TextRun]:
    """Adjacent runs of the same kind as one (segment and word runs meet at boundaries)."""
    out: list[TextRun] = []
    for run in runs:
        if not run.champion and not run.challenger:
            continue
        if out and out[-1].op == run.op:
            last = out[-1]
            out[-1] = TextRun(
                run.op, last.champion + run.champion, last.challenger + run.challenger
            )
        else:
            out.append(run)
    return out


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
