"""ShadowMiddleware on real FastAPI and Starlette apps (in process, through httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from shadowstream.producers import HttpShadowStats, ShadowMiddleware
from tests.support.recording import RecordingEmitter


class Item(BaseModel):
    name: str
    price: float


def build_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/items/{item_id}")
    async def update(item_id: int, item: Item) -> dict[str, Any]:
        return {"id": item_id, "name": item.name.upper(), "price": item.price}

    @app.get("/v1/items/{item_id}")
    async def read(item_id: int, verbose: bool = False) -> dict[str, Any]:
        return {"id": item_id, "verbose": verbose}

    @app.post("/v1/unshadowed")
    async def unshadowed(item: Item) -> Item:
        return item

    @app.get("/v1/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"a": '
            yield b"1}"

        return StreamingResponse(chunks(), media_type="application/json")

    @app.get("/v1/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("plain words")

    @app.get("/v1/big")
    async def big() -> dict[str, str]:
        return {"blob": "x" * 5000}

    @app.get("/v1/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such item")

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("champion exploded")

    @app.get("/v1/unavailable")
    async def unavailable() -> JSONResponse:
        return JSONResponse({"error": "overloaded"}, status_code=503)

    return app


def shadowed(app: Any, emitter: RecordingEmitter, **options: Any) -> HttpShadowStats:
    stats = HttpShadowStats()
    options.setdefault(
        "routes",
        ["/v1/items/*", "/v1/stream", "/v1/text", "/v1/big", "/v1/m*", "/v1/b*", "/v1/unavailable"],
    )
    app.add_middleware(ShadowMiddleware, emitter=emitter, stats=stats, **options)
    return stats


def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.request(method, url, **kwargs)
            await response.aread()
            return response

    return asyncio.run(go())


@pytest.fixture
def emitter() -> Iterator[RecordingEmitter]:
    em = RecordingEmitter()
    yield em
    em.close(0.1)


def test_route_template_json_bodies_latency_and_attributes(emitter: RecordingEmitter) -> None:
    app = build_app()
    stats = shadowed(
        app,
        emitter,
        attributes_from_headers={"x-tenant-tier": "tier"},
        attributes=lambda r: {"method": r.method, "item": str(r.path_params["item_id"])},
        request_id_header="x-request-id",
    )
    body = b'{"name": "lamp",  "price": 12.5}'  # recorded byte for byte, spaces included
    response = call(
        app,
        "POST",
        "/v1/items/42",
        content=body,
        headers={
            "content-type": "application/json",
            "x-tenant-tier": "pro",
            "x-request-id": "rid-1",
        },
    )
    assert response.json() == {"id": 42, "name": "LAMP", "price": 12.5}
    call(app, "POST", "/v1/unshadowed", json={"name": "n", "price": 1})
    call(app, "GET", "/v1/items/7?verbose=true&tag=a&tag=b")
    [request, get], [answer, get_answer] = emitter.requests(), emitter.responses()
    assert request["request_id"] == answer["request_id"] == "rid-1"
    assert request["endpoint"] == "/v1/items/{item_id}"
    assert request["payload"] == body.decode()
    assert request["attributes"] == {"tier": "pro", "method": "POST", "item": "42"}
    assert answer["output"] == response.content.decode()
    assert answer["status"] == "ok" and answer["latency_ms"] > 0
    assert get["endpoint"] == "/v1/items/{item_id}"
    assert json.loads(get["payload"]) == {
        "path_params": {"item_id": "7"},
        "query": {"verbose": "true", "tag": ["a", "b"]},
    }
    assert json.loads(get_answer["output"]) == {"id": 7, "verbose": True}
    assert stats.shadowed == 2


def test_the_client_receives_exactly_what_the_app_sends(emitter: RecordingEmitter) -> None:
    plain, wrapped = build_app(), build_app()
    shadowed(wrapped, emitter, streaming="capture", non_json="text")
    for method, url in [
        ("POST", "/v1/items/3"),
        ("GET", "/v1/stream"),
        ("GET", "/v1/text"),
        ("GET", "/v1/missing"),
        ("GET", "/v1/broken"),
        ("GET", "/v1/unavailable"),
        ("GET", "/v1/big"),
    ]:
        kwargs = {"json": {"name": "x", "price": 1}} if method == "POST" else {}
        a, b = call(plain, method, url, **kwargs), call(wrapped, method, url, **kwargs)
        assert (a.status_code, a.content) == (b.status_code, b.content), url
        assert sorted(a.headers.items()) == sorted(b.headers.items()), url


def test_streaming_non_json_oversize_and_errors_are_handled_explicitly(
    emitter: RecordingEmitter,
) -> None:
    app = build_app()
    stats = shadowed(app, emitter, max_body_bytes=1000)
    for url in [
        "/v1/stream",
        "/v1/text",
        "/v1/big",
        "/v1/missing",
        "/v1/broken",
        "/v1/unavailable",
    ]:
        call(app, "GET", url)
    assert (stats.skipped_streaming, stats.skipped_non_json, stats.skipped_oversize) == (1, 1, 1)
    assert stats.skipped_client_error == 1
    assert stats.shadowed == 2
    broken, unavailable = emitter.responses()
    assert broken["status"] == "error" and "RuntimeError: champion exploded" in broken["error"]
    assert unavailable["status"] == "error" and broken["output"] is None
    assert unavailable["error"].startswith("HTTP 503")


def test_streams_and_text_can_be_captured_when_asked(emitter: RecordingEmitter) -> None:
    app = build_app()
    stats = shadowed(app, emitter, streaming="capture", non_json="text", record_client_errors=True)
    call(app, "GET", "/v1/stream")
    call(app, "GET", "/v1/text")
    call(app, "GET", "/v1/missing")
    outputs = [json.loads(r["output"]) for r in emitter.responses()]
    assert outputs == [{"a": 1}, "plain words", {"detail": "no such item"}]
    assert stats.shadowed == 3


def test_a_starlette_app_with_a_mount(emitter: RecordingEmitter) -> None:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"got": await request.json(), "id": request.path_params["item_id"]})

    api = Starlette(routes=[Route("/items/{item_id:int}", echo, methods=["POST"])])
    app = Starlette(routes=[Mount("/api/v2", app=api)])
    stats = HttpShadowStats()
    app.add_middleware(
        ShadowMiddleware, emitter=emitter, routes=["/api/v2/items/{item_id}"], stats=stats
    )
    assert call(app, "POST", "/api/v2/items/5", json={"q": 1}).json() == {"got": {"q": 1}, "id": 5}
    [request] = emitter.requests()
    assert request["endpoint"] == "/api/v2/items/{item_id}"
    assert json.loads(request["payload"]) == {"q": 1}


def test_methods_sampling_and_the_kill_switch(emitter: RecordingEmitter) -> None:
    app = build_app()
    shadowed(app, emitter, methods=["POST"], sample_rate=0.0)
    call(app, "POST", "/v1/items/1", json={"name": "x", "price": 1})
    call(app, "GET", "/v1/items/1")
    assert emitter.sent == []
    app2 = build_app()
    stats = shadowed(app2, emitter)
    emitter.enabled = False
    call(app2, "GET", "/v1/items/1")
    assert emitter.sent == [] and stats.shadowed == 0
