"""Free-text LLM answers and a judge for the judge tests (importable as tests.support.llm_models).

Questions carry a ``kind`` that decides how the challenger answers and how
the stand-in judge (``judge``, served as an OpenAI-compatible chat endpoint by
tests/support/llm_server.py) behaves:

* ``same``    - the challenger answers exactly like the champion (the cheap
  ``exact`` step decides: never sent to the judge);
* ``better``  - the challenger adds a detail: the judge prefers it;
* ``worse``   - the challenger does not know: the judge prefers the champion;
* ``reworded`` - same content, other words: the judge calls it a tie;
* ``biased``  - the judge always picks the answer shown first (position
  bias: the two orders disagree -> ``undecided``);
* ``garbage`` - the judge answers without a verdict (malformed, every time).
"""

from __future__ import annotations

import json
import re
from typing import Any

KINDS = ("same", "better", "worse", "reworded", "biased", "garbage")


def question(i: int) -> dict[str, Any]:
    kind = KINDS[i % len(KINDS)]
    return {"i": i, "kind": kind, "question": f"What is the capital of country {i}? ({kind})"}


def champion_answer(payload: dict[str, Any]) -> str:
    return f"The capital of country {payload['i']} is City {payload['i']}."


async def challenger(payload: dict[str, Any]) -> str:
    base = champion_answer(payload)
    kind = payload["kind"]
    if kind == "better":
        return base + " It lies on the river, detail included."
    if kind == "worse":
        return "I do not know."
    if kind in ("reworded", "biased", "garbage"):
        return f"City {payload['i']} is the capital of country {payload['i']}."
    return base


_BLOCK = re.compile(r"Answer ([AB]):\n<<<\n(.*?)\n>>>", re.S)


def judge(body: dict[str, Any]) -> str:
    """The stand-in judge model: reads the prompt, answers as the system prompt asks."""
    prompt = body["messages"][-1]["content"]
    answers = dict(_BLOCK.findall(prompt))
    if "(garbage)" in prompt:
        return "Both answers have their merits; it is hard to say."
    if "(biased)" in prompt:
        return json.dumps({"verdict": "A", "rationale": "A came first, so A."})

    def score(text: str) -> int:
        return -1 if "do not know" in text else (1 if "detail" in text else 0)

    a, b = score(answers.get("A", "")), score(answers.get("B", ""))
    verdict = "tie" if a == b else ("A" if a > b else "B")
    why = {"tie": "Both give the same capital.", "A": "A is more useful.", "B": "B is more useful."}
    # models wrap JSON in code fences now and then: the reader must cope
    return "```json\n" + json.dumps({"verdict": verdict, "rationale": why[verdict]}) + "\n```"
