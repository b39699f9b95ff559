"""A FastAPI service for the web integration test and the ASGI benchmark."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from shadowstream.producers import ShadowEmitter
from tests.support.models import label_for


class Ticket(BaseModel):
    text: str
    lang: str


class Summary(BaseModel):
    words: int
    lang: str


def build_service(emitter: ShadowEmitter) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/tickets/{ticket_id}/classify")
    async def classify(ticket_id: int, ticket: Ticket) -> dict[str, Any]:
        return {"label": label_for(ticket.model_dump()), "lang": ticket.lang}

    @app.post("/v1/summarize")
    @emitter.shadowed("/v1/summarize")
    async def summarize(ticket: Ticket, request: Request, tasks: BackgroundTasks) -> Summary:
        return Summary(words=len(ticket.text.split()), lang=ticket.lang)

    @app.get("/v1/tickets/{ticket_id}/stream")
    async def stream(ticket_id: int) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b'{"ticket": ', str(ticket_id).encode(), b"}"):
                yield part

        return StreamingResponse(chunks(), media_type="application/json")

    @app.get("/v1/tickets/{ticket_id}/text")
    async def text(ticket_id: int) -> PlainTextResponse:
        return PlainTextResponse(f"ticket {ticket_id}")

    return app


class ServerThread:
    """uvicorn serving an app on a loopback port, in a thread of this process."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
