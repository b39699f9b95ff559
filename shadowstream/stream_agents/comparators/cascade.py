"""A cascade: cheap comparators first, expensive ones only on what is still undecided.

Each step is a comparator and which of its verdicts it may settle:

* ``decide = "any"`` (default): a yes or a no ends the cascade;
* ``decide = "agree"``: only "not diverged" ends it (an exact match settles
  agreement, a mismatch goes on to the next step);
* ``decide = "diverge"``: only "diverged" ends it.

A step that returns ``diverged = None`` always passes on. A step that *defers*
(the ``judge``: decided later, by an LLM, off the join's path) must be the
last one; the undecided verdict keeps the previous step's score and summary. If no step decides,
``when_undecided`` says what to report: ``"undecided"`` (diverged stays
null, the default), ``"diverged"`` or ``"agree"``.

The verdict keeps the deciding step's score and summary, and names the step
(``by``), so the comparison shows e.g. ``cascade:text``.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from typing import Any, Literal

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import Comparator, NoiseAware, Verdict

Decide = Literal["any", "agree", "diverge"]
WhenUndecided = Literal["undecided", "diverged", "agree"]


@dataclass(frozen=True, slots=True)
class CascadeStep:
    comparator: Comparator
    decide: Decide = "any"

    def settles(self, verdict: Verdict) -> bool:
        if verdict.diverged is None:
            return False
        if self.decide == "agree":
            return verdict.diverged is False
        if self.decide == "diverge":
            return verdict.diverged is True
        return True


class CascadeComparator:
    name = "cascade"

    def __init__(self, steps: Sequence[CascadeStep], when_undecided: str = "undecided") -> None:
        if not steps:
            raise ConfigError("a cascade needs at least one step")
        if when_undecided not in ("undecided", "diverged", "agree"):
            raise ConfigError("when_undecided must be 'undecided', 'diverged' or 'agree'")
        self.steps = tuple(steps)
        self.when_undecided = when_undecided
        # a step that stores measures (ranked lists) needs identical outputs judged too
        self.stores_measures = any(getattr(st.comparator, "stores_measures", False) for st in steps)

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        return self._run(champion, challenger, None)

    def compare_ignoring(self, champion: Any, challenger: Any, noisy: Set[str]) -> Verdict:
        return self._run(champion, challenger, noisy)

    def _run(self, champion: Any, challenger: Any, noisy: Set[str] | None) -> Verdict:
        last: Verdict | None = None
        trail: list[str] = []
        for step in self.steps:
            comparator = step.comparator
            if noisy and isinstance(comparator, NoiseAware):
                verdict = comparator.compare_ignoring(champion, challenger, noisy)
            else:
                verdict = comparator.compare(champion, challenger)
            by = verdict.by or comparator.name
            if (
                verdict.diverged is None
                and last is not None
                and getattr(comparator, "defers", False)
            ):
                # a step that defers (the LLM judge) keeps what the cheaper steps found
                summary = f"{last.summary}; {verdict.summary}"
                verdict = Verdict(None, last.score, summary, last.paths, last.ignored, by)
            if step.settles(verdict):
                return _named(verdict, by)
            trail.append(by)
            last = _named(verdict, by)
        assert last is not None
        passed = " > ".join(trail)
        if self.when_undecided == "undecided":
            return replace(last, diverged=None, summary=f"undecided after {passed}: {last.summary}")
        diverged = self.when_undecided == "diverged"
        return replace(
            last,
            diverged=diverged,
            summary=f"undecided after {passed}, counted as "
            f"{'diverged' if diverged else 'agreeing'}: {last.summary}",
            paths=last.paths if diverged else (),
        )


def _named(verdict: Verdict, by: str) -> Verdict:
    if verdict.by == by:
        return verdict
    return replace(verdict, by=by)
