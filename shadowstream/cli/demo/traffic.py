"""A synthetic production service: realistic request mix, emitted through the SDK."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shadowstream.cli.demo.models import answer, champion_latency_ms, usage_for
from shadowstream.producers import ShadowEmitter

WORDS = [
    "order",
    "invoice",
    "refund",
    "package",
    "delivery",
    "late",
    "broken",
    "password",
    "login",
    "account",
    "charge",
    "card",
    "subscription",
    "cancel",
    "upgrade",
    "plan",
    "address",
    "tracking",
    "number",
    "support",
    "help",
    "error",
    "app",
    "crash",
    "screen",
    "payment",
    "failed",
    "twice",
    "return",
    "label",
    "warehouse",
    "customs",
    "fee",
    "discount",
]

ENDPOINTS = [("/v1/classify", 0.6), ("/v1/triage", 0.3), ("/v1/summarize", 0.1)]
WRITE_ENDPOINT = "/v1/tickets/create"  # has side effects: never shadowed
LANGUAGES = [("en", 0.55), ("de", 0.2), ("fr", 0.15), ("es", 0.1)]
TIERS = [("free", 0.6), ("pro", 0.3), ("enterprise", 0.1)]
SIZES = [("short", 0.5, 8, 20), ("medium", 0.35, 20, 60), ("long", 0.15, 60, 160)]


def _pick(options: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    roll, acc = random.random(), 0.0
    for option in options:
        acc += option[1]
        if roll < acc:
            return option
    return options[-1]


@dataclass
class GeneratedRequest:
    request_id: str
    endpoint: str
    payload: dict[str, Any]
    attributes: dict[str, str]


def make_request() -> GeneratedRequest:
    size, _, low, high = _pick(SIZES)
    text = " ".join(random.choice(WORDS) for _ in range(random.randint(low, high)))
    endpoint = WRITE_ENDPOINT if random.random() < 0.03 else _pick(ENDPOINTS)[0]
    return GeneratedRequest(
        request_id=str(uuid.uuid4()),
        endpoint=endpoint,
        payload={"text": text, "customer": random.randint(1, 5000)},
        attributes={
            "language": _pick(LANGUAGES)[0],
            "tier": _pick(TIERS)[0],
            "input_size": size,
            "prompt_template": random.choice(["v3", "v4"]),
        },
    )


def serve_one(emitter: ShadowEmitter, request: GeneratedRequest) -> None:
    """What an instrumented production handler does: answer, and emit both events."""
    emitter.emit_request(
        request.request_id, request.endpoint, request.payload, attributes=request.attributes
    )
    output = answer(request.payload)
    usage = usage_for(request.payload)
    emitter.emit_response(
        request.request_id,
        output,
        champion_latency_ms(request.payload),
        tokens_in=usage["tokens_in"],
        tokens_out=usage["tokens_out"],
    )


async def generate(
    emitter: ShadowEmitter,
    *,
    rate: float,
    seconds: float,
    on_progress: Callable[[int], None] | None = None,
    serve: Callable[[ShadowEmitter], None] | None = None,
) -> int:
    """Emit ``rate`` requests/s for ``seconds``; returns how many were sent. ``serve`` emits
    one request (default: the support-triage service's)."""
    serve = serve or (lambda e: serve_one(e, make_request()))
    sent = 0
    start = time.monotonic()
    tick = 0.05
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate) - sent
        for _ in range(max(due, 0)):
            serve(emitter)
            sent += 1
        if on_progress is not None:
            on_progress(sent)
        await asyncio.sleep(tick)
    return sent
