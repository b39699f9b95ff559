"""The FastAPI service of asgi_overhead.py, served by uvicorn in its own process.

Env: BENCH_BROKER (kafka://...), BENCH_PREFIX (topic prefix), BENCH_MIDDLEWARE=1 to
install ShadowMiddleware on /v1/tickets/{ticket_id}/classify. Routes:

* POST /v1/tickets/{ticket_id}/classify - the champion (shadowed by the middleware when on)
* POST /v1/tickets/{ticket_id}/decorated - the same handler under @emitter.shadowed (the SDK)
* GET  /stats - the emitter's and the middleware's counters
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from shadowstream.producers import HttpShadowStats, ShadowEmitter, ShadowMiddleware


class Ticket(BaseModel):
    text: str
    lang: str
    customer: int


def answer(ticket: Ticket) -> dict[str, Any]:
    words = ticket.text.split()
    label = "billing" if any(w in ("refund", "invoice") for w in words) else "other"
    return {"label": label, "confidence": 0.83, "words": len(words), "lang": ticket.lang}


emitter = ShadowEmitter(
    os.environ["BENCH_BROKER"], service="bench", topic_prefix=os.environ["BENCH_PREFIX"]
)
stats = HttpShadowStats()
app = FastAPI()


@app.post("/v1/tickets/{ticket_id}/classify")
async def classify(ticket_id: int, ticket: Ticket) -> dict[str, Any]:
    return answer(ticket)


@app.post("/v1/tickets/{ticket_id}/decorated")
@emitter.shadowed("/v1/tickets/{ticket_id}/decorated")
async def decorated(ticket_id: int, ticket: Ticket) -> dict[str, Any]:
    return answer(ticket)


@app.get("/stats")
async def counters() -> dict[str, Any]:
    emitter.flush(5)
    return {"emitter": vars(emitter.stats()), "middleware": vars(stats)}


if os.environ.get("BENCH_MIDDLEWARE") == "1":
    app.add_middleware(
        ShadowMiddleware,
        emitter=emitter,
        routes=["/v1/tickets/{ticket_id}/classify"],
        attributes_from_headers={"x-tier": "tier"},
        stats=stats,
    )
