"""Demo models. The champion answers "production"; challengers run in workers.

* ``champion`` - the production model (also re-run by the ``control``
  challenger: the noise floor of an A/A comparison).
* ``fast``   - a distilled model: nearly identical answers, ~40% faster.
* ``slow``   - a bigger model: same answers mostly, ~2.5x slower.
* ``flaky``  - a new prompt template: usually fine, but sometimes returns
  malformed output (not JSON, missing fields), especially on long inputs,
  and errors now and then.

Outputs carry a random ``trace_id`` and a timestamp (fields that differ on
every call), as real JSON APIs do; the demo config ignores them.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from typing import Any

LABELS = ["billing", "shipping", "returns", "technical", "account", "other"]


def _seed(payload: Any) -> int:
    text = payload.get("text", "") if isinstance(payload, dict) else str(payload)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def answer(payload: Any, noise: float = 0.0) -> dict[str, Any]:
    """The "true" answer for a payload, optionally with some disagreement."""
    seed = _seed(payload)
    label = LABELS[seed % len(LABELS)]
    confidence = round(0.55 + (seed % 40) / 100, 2)
    if noise and random.random() < noise:
        label = LABELS[(seed + 1 + random.randrange(len(LABELS) - 1)) % len(LABELS)]
        confidence = round(max(0.3, confidence - 0.2), 2)
    text = payload.get("text", "") if isinstance(payload, dict) else str(payload)
    return {
        "label": label,
        "confidence": confidence,
        "summary": f"{label} request ({len(text.split())} words)",
        "trace_id": uuid.uuid4().hex,
        "generated_at": time.time(),
    }


def usage_for(payload: Any, factor: float = 1.0) -> dict[str, int]:
    text = payload.get("text", "") if isinstance(payload, dict) else str(payload)
    tokens_in = max(1, int(len(text.split()) * 1.3))
    return {"tokens_in": tokens_in, "tokens_out": int((20 + tokens_in // 10) * factor)}


def champion_latency_ms(payload: Any) -> float:
    words = len(payload.get("text", "").split()) if isinstance(payload, dict) else 10
    return random.lognormvariate(3.6, 0.25) + words * 0.4  # ~40-80 ms


async def control(payload: Any, context: Any = None) -> Any:
    """Re-runs the champion model: an A/A comparison gives the noise floor."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    await asyncio.sleep(champion_latency_ms(payload) / 1000)
    return ModelAnswer(answer(payload, noise=0.01), **usage_for(payload))


async def fast(payload: Any, context: Any = None) -> Any:
    """Distilled: as good as the champion, except noticeably worse on German input."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    await asyncio.sleep(champion_latency_ms(payload) * 0.6 / 1000)
    german = context is not None and context.attributes.get("language") == "de"
    return ModelAnswer(answer(payload, noise=0.25 if german else 0.03), **usage_for(payload, 0.9))


async def slow(payload: Any, context: Any = None) -> Any:
    from shadowstream.stream_agents.challengers import ModelAnswer

    await asyncio.sleep(champion_latency_ms(payload) * 2.5 / 1000)
    return ModelAnswer(answer(payload, noise=0.02), **usage_for(payload, 1.4))


async def flaky(payload: Any, context: Any = None) -> Any:
    from shadowstream.stream_agents.challengers import ModelAnswer

    await asyncio.sleep(champion_latency_ms(payload) / 1000)
    long_input = isinstance(payload, dict) and len(payload.get("text", "").split()) > 60
    roll = random.random()
    if roll < 0.02:
        raise RuntimeError("upstream model returned HTTP 500")
    if roll < (0.30 if long_input else 0.05):
        broken: Any = random.choice(
            [
                "Sure! Here is the classification: billing",  # prose, not JSON
                {"labl": "billing", "confidence": "high"},  # wrong keys and types
            ]
        )
        return ModelAnswer(broken, **usage_for(payload, 1.1))
    return ModelAnswer(answer(payload, noise=0.03), **usage_for(payload, 1.1))


def hang(payload: Any) -> Any:
    """Never answers in time (for fault tests)."""
    time.sleep(3600)
    return None
