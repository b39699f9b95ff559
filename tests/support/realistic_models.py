"""Models with the habits of real services: random ids, timestamps, free text, token usage.

Importable as ``tests.support.realistic_models:NAME`` for challenger callables.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from shadowstream.stream_agents.challengers.base import ModelAnswer

ANSWERS = [
    "Your refund was issued and should arrive within five business days.",
    "The parcel left our warehouse yesterday and is on its way to you.",
    "You can reset your password from the account settings page.",
    "Our support team is available every day from 8am to 8pm.",
]
PARAPHRASES = [
    "Your refund has been issued and should arrive in five business days.",
    "The parcel left our warehouse yesterday and is on its way to you!",
    "You can reset the password from your account settings page.",
    "Our support team is available daily from 8am to 8pm.",
]


def json_answer(payload: dict[str, Any]) -> dict[str, Any]:
    """A JSON API answer: stable content, plus a request id, a timestamp and per-item traces."""
    i = int(payload["i"])
    return {
        "request_uuid": uuid.uuid4().hex,
        "generated_at": time.time(),
        "label": ["billing", "shipping", "account"][i % 3],
        "score": round(0.5 + (i % 10) / 20, 3),
        "items": [{"sku": f"sku-{i}-{k}", "trace": uuid.uuid4().hex[:12]} for k in range(2)],
    }


async def control(payload: dict[str, Any]) -> dict[str, Any]:
    """Re-runs the champion: same content, fresh ids and timestamps."""
    return json_answer(payload)


async def candidate(payload: dict[str, Any]) -> dict[str, Any]:
    """The champion's answers, except a real change of label on every 4th request."""
    out = json_answer(payload)
    if int(payload["i"]) % 4 == 0:
        out["label"] = "other"
    return out


def text_answer(i: int) -> str:
    return ANSWERS[i % len(ANSWERS)]


async def paraphraser(payload: dict[str, Any]) -> ModelAnswer:
    """Free text: paraphrases the champion, and gets every 5th request really wrong."""
    i = int(payload["i"])
    text = "I am not able to help with that." if i % 5 == 0 else PARAPHRASES[i % len(PARAPHRASES)]
    return ModelAnswer(output=text, tokens_in=40, tokens_out=len(text.split()))


async def expensive(payload: dict[str, Any]) -> ModelAnswer:
    """Answers like the champion but bills 1000 tokens per call."""
    return ModelAnswer(
        output=json_answer(payload),
        tokens_in=800,
        tokens_out=200,
        cost=round(random.uniform(0.01, 0.02), 4),
    )
