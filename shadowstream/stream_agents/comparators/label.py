"""Classification agreement: same label, or the champion's label in the challenger's top-k.

Options:
    path:        where the label is. Default: a JSON object's ``label`` key; a
                 bare scalar or list output is the label itself. A list is a multi-label answer, compared as
                 a set (score = 1 - Jaccard similarity).
    top_k_path:  where the challenger's ranked candidates are (a list of labels,
                 or of objects holding the label under ``label_key``). With it,
                 the challenger agrees if the champion's label is among its
                 first ``k``; the score grows with the rank.
    k:           how many candidates count (default: all of them).
    label_key:   the label's key inside candidate objects (default ``label``).
    case_insensitive: labels compared after ``casefold``.
"""

from __future__ import annotations

from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import Verdict, clip, short_repr
from shadowstream.stream_agents.comparators.paths import MISSING, PathSelector


class LabelComparator:
    name = "label"

    def __init__(
        self,
        *,
        path: str | None = None,
        top_k_path: str | None = None,
        k: int | None = None,
        label_key: str = "label",
        case_insensitive: bool = False,
    ) -> None:
        if k is not None and k < 1:
            raise ConfigError("k must be >= 1")
        if k is not None and top_k_path is None:
            raise ConfigError("k needs top_k_path (where the challenger's candidates are)")
        self.path = path or "$.label"
        self.top_k_path = top_k_path
        self.k = k
        self.label_key = label_key
        self.case_insensitive = case_insensitive
        self._label = PathSelector(path) if path else None
        self._top_k = PathSelector(top_k_path) if top_k_path else None

    def _norm(self, label: Any) -> Any:
        if self.case_insensitive and isinstance(label, str):
            return label.casefold()
        if isinstance(label, dict):
            return self._norm(label.get(self.label_key))
        if isinstance(label, float) and label.is_integer():
            return int(label)
        return label

    def _extract(self, output: Any) -> Any:
        if self._label is not None:
            return self._label(output)
        if isinstance(output, dict):
            return output.get("label", MISSING)
        return output  # a bare label (or list of labels)

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        expected = self._extract(champion)
        if expected is MISSING or expected is None:
            return Verdict(None, 0.0, f"champion has no label at {self.path}")
        if isinstance(expected, list):
            return self._multi_label(expected, self._extract(challenger))
        want = self._norm(expected)
        if self._top_k is not None:
            candidates = self._top_k(challenger)
            if isinstance(candidates, list) and candidates:
                return self._ranked(want, expected, candidates)
        got = self._extract(challenger)
        if got is MISSING or got is None:
            return Verdict(True, 1.0, f"challenger has no label at {self.path}", (self.path,))
        if self._norm(got) == want:
            return Verdict(False, 0.0, f"same label {short_repr(expected)}")
        return Verdict(
            True, 1.0, clip(f"label {short_repr(expected)} != {short_repr(got)}"), (self.path,)
        )

    def _ranked(self, want: Any, expected: Any, candidates: list[Any]) -> Verdict:
        k = min(self.k or len(candidates), len(candidates))
        ranked = [self._norm(c) for c in candidates[:k]]
        if want in ranked:
            rank = ranked.index(want)
            if rank == 0:
                return Verdict(False, 0.0, f"same top label {short_repr(expected)}")
            return Verdict(
                False,
                rank / k,
                clip(f"label {short_repr(expected)} is #{rank + 1} of the challenger's top-{k}"),
            )
        shown = ", ".join(short_repr(c, 30) for c in ranked[:5])
        return Verdict(
            True,
            1.0,
            clip(f"label {short_repr(expected)} not in the challenger's top-{k} ({shown})"),
            (self.top_k_path or self.path,),
        )

    def _multi_label(self, expected: list[Any], got: Any) -> Verdict:
        if got is MISSING or got is None:
            return Verdict(True, 1.0, f"challenger has no labels at {self.path}", (self.path,))
        want = {_hashable(self._norm(x)) for x in expected}
        have = {_hashable(self._norm(x)) for x in (got if isinstance(got, list) else [got])}
        if want == have:
            return Verdict(False, 0.0, f"same {len(want)} labels")
        union = want | have
        score = 1.0 - len(want & have) / len(union)
        missing = ", ".join(sorted(map(str, want - have))[:5]) or "-"
        extra = ", ".join(sorted(map(str, have - want))[:5]) or "-"
        return Verdict(
            True, score, clip(f"labels differ: missing {missing}; extra {extra}"), (self.path,)
        )


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
