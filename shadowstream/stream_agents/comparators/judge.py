"""The ``judge`` comparator: an LLM compares the two answers, off the join's path.

An LLM call takes seconds, far too long for the router's join loop. So this
comparator never calls a model itself: in the router it leaves the pair
undecided and marks it for the judge (``Verdict.by == "judge"``); the
ComparisonBuilder then hands the pair to the judge agent
(:mod:`shadowstream.stream_agents.judge`), which asks the model - pairwise,
both orders - and re-emits the comparison with ``judge_verdict`` and
``judge_rationale``.

As the last step of a cascade it runs only on the pairs the cheaper steps
could not decide::

    comparator = { kind = "cascade", options = { steps = [
        { kind = "exact", decide = "agree" },
        { kind = "text", options = { threshold = 0.97 }, decide = "agree" },
        { kind = "judge", options = { model = "gpt-4o-mini", rubric = "..." } },
    ] } }

Options are :class:`shadowstream.core.config.JudgeSpec`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shadowstream.core.challenger_config import ChallengerSpec, JudgeSpec
from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.comparators.base import Verdict

JUDGE = "judge"


def parse_judge_spec(options: dict[str, Any]) -> JudgeSpec:
    try:
        return JudgeSpec(**options)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"bad options for comparator 'judge': {problems}") from None


class JudgeComparator:
    """Defers the decision to the judge agent (see the module doc)."""

    name = JUDGE
    defers = True  # a cascade keeps the previous step's score and summary

    def __init__(self, **options: Any) -> None:
        self.spec = parse_judge_spec(options)

    def compare(self, champion: Any, challenger: Any) -> Verdict:
        return Verdict(None, 0.0, "left to the LLM judge", by=JUDGE)


def judge_spec_of(challenger: ChallengerSpec) -> JudgeSpec | None:
    """The judge a challenger's comparator ends with, if any (read from its config)."""
    comparator = challenger.comparator
    if comparator.kind == JUDGE:
        return parse_judge_spec(dict(comparator.options))
    if comparator.kind != "cascade":
        return None
    for step in comparator.options.get("steps") or []:
        if isinstance(step, dict) and step.get("kind") == JUDGE:
            return parse_judge_spec(dict(step.get("options") or {}))
    return None
