"""What the judge is asked, how its answer is read, and how the two orders combine.

Each pair is judged twice, with the answers' positions swapped: first the
champion's answer as A and the challenger's as B, then the other way round.
LLM judges favour a position (often the first); asking both ways cancels
that bias. Only when both orders agree is there a verdict for the
challenger (``better``, ``same``, ``worse``); when they disagree the pair is
``undecided`` - which is itself a finding: the difference is too slight for
the judge to see reliably.

The judge must answer with a JSON object ``{"verdict": "A" | "B" | "tie",
"rationale": "..."}``. Reading is tolerant of what models do (code fences,
text around the object, "Answer A", "equal"); anything else is malformed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from shadowstream.core.challenger_config import JudgeSpec

BETTER, SAME, WORSE, UNDECIDED = "better", "same", "worse", "undecided"
SKIPPED, ERROR = "skipped", "error"
# verdicts worth caching: the model's considered answer
DECIDED = frozenset({BETTER, SAME, WORSE, UNDECIDED})
RATIONALE_CHARS = 300

SYSTEM = """You are an impartial judge. You compare two answers (A and B) to the same input.
Rubric: {rubric}
Judge only by the rubric, not by the answers' order or length.
Reply with a single JSON object and nothing else:
{{"verdict": "A" | "B" | "tie", "rationale": "<one or two sentences>"}}
"A" or "B": that answer is better; "tie": they are equally good under the rubric."""

USER = """Input:
<<<
{input}
>>>

Answer A:
<<<
{a}
>>>

Answer B:
<<<
{b}
>>>"""

_A = {"a", "answer a", "response a", "a is better", "answer a is better", "first"}
_B = {"b", "answer b", "response b", "b is better", "answer b is better", "second"}
_TIE = {"tie", "equal", "same", "equivalent", "both", "neither", "draw", "a = b", "a=b"}
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


class MalformedAnswer(ValueError):
    """The judge's reply has no readable verdict."""


@dataclass(frozen=True)
class OrderVerdict:
    """One order's reading: which position won, and why."""

    winner: str  # "A" | "B" | "tie"
    rationale: str


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def messages(spec: JudgeSpec, task_input: str, a: str, b: str) -> list[dict[str, str]]:
    limit = spec.max_chars
    return [
        {"role": "system", "content": SYSTEM.format(rubric=spec.rubric.strip())},
        {
            "role": "user",
            "content": USER.format(
                input=clip(task_input, limit), a=clip(a, limit), b=clip(b, limit)
            ),
        },
    ]


def _winner(raw: Any) -> str:
    word = " ".join(str(raw).strip().strip(".!\"'").lower().split())
    if word in _A:
        return "A"
    if word in _B:
        return "B"
    if word in _TIE:
        return "tie"
    raise MalformedAnswer(f"verdict {str(raw)[:40]!r} is none of A, B, tie")


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = _FENCE.sub("", text.strip())
    try:
        value = json.loads(stripped)
    except ValueError:
        start, end = stripped.find("{"), stripped.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            value = json.loads(stripped[start : end + 1])
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def parse_answer(text: str | None) -> OrderVerdict:
    """The judge's reply -> which position won; MalformedAnswer when unreadable."""
    if not text or not text.strip():
        raise MalformedAnswer("empty answer")
    obj = _json_object(text)
    if obj is None:
        # a model that ignored the format but answered with the bare word
        return OrderVerdict(_winner(text), "")
    lowered = {str(k).lower(): v for k, v in obj.items()}
    raw = lowered.get("verdict", lowered.get("winner", lowered.get("better")))
    if raw is None:
        raise MalformedAnswer(f"no 'verdict' in {clip(text, 80)!r}")
    rationale = lowered.get("rationale", lowered.get("reason", lowered.get("explanation", "")))
    return OrderVerdict(_winner(raw), clip(" ".join(str(rationale or "").split()), 1000))


def for_challenger(order: OrderVerdict, challenger_first: bool) -> str:
    """An order's verdict from the challenger's point of view."""
    if order.winner == "tie":
        return SAME
    challenger_position = "A" if challenger_first else "B"
    return BETTER if order.winner == challenger_position else WORSE


def combine(first: OrderVerdict, swapped: OrderVerdict) -> tuple[str, str]:
    """Champion-first and challenger-first readings -> (verdict, rationale)."""
    one = for_challenger(first, challenger_first=False)
    two = for_challenger(swapped, challenger_first=True)
    if one == two:
        why = first.rationale or swapped.rationale
        return one, clip(why, RATIONALE_CHARS)
    why = (
        f"the orders disagree: champion shown first -> {one} ({first.rationale}); "
        f"challenger shown first -> {two} ({swapped.rationale})"
    )
    return UNDECIDED, clip(why, RATIONALE_CHARS)


def cache_key(spec: JudgeSpec, task_input: str, champion: str, challenger: str) -> str:
    """Same judge, rubric, input and answers -> same key (replays do not pay twice)."""
    digest = hashlib.sha256()
    for part in (spec.model, spec.rubric, task_input, champion, challenger):
        data = part.encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()
