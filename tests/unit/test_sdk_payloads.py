"""The SDK records models, dataclasses, attrs and enums as JSON, and leaves framework objects out."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shadowstream.producers.jsonable import (
    JSONText,
    call_payload,
    call_shape,
    is_framework_object,
    to_json,
)
from tests.support.recording import RecordingEmitter


class Lang(enum.Enum):
    DE = "de"
    EN = "en"


class Ticket(BaseModel):
    text: str
    lang: str
    created: dt.datetime | None = None


class Label(BaseModel):
    label: str
    score: float


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    total: decimal.Decimal
    tags: frozenset[str]
    lang: Lang


@attrs.define
class Customer:
    name: str
    tier: str
    orders: list[Order]


class Opaque:
    pass


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __str__(self) -> str:
        return f"{self.cents / 100:.2f} EUR"


@pytest.fixture
def emitter() -> Iterator[RecordingEmitter]:
    em = RecordingEmitter()
    yield em
    em.close(0.1)


def test_models_dataclasses_attrs_and_enums_become_their_json_form() -> None:
    order = Order(uuid.UUID(int=7), decimal.Decimal("12.50"), frozenset({"b", "a"}), Lang.DE)
    value = {
        "ticket": Ticket(text="Rechnung falsch", lang="de", created=dt.datetime(2024, 5, 1, 12)),
        "customer": Customer("Ada", "pro", [order]),
        "lang": Lang.EN,
        "money": Money(1250),
        "opaque": Opaque(),
        7: "int keys too",
    }
    assert json.loads(to_json(value)) == {
        "ticket": {"text": "Rechnung falsch", "lang": "de", "created": "2024-05-01T12:00:00"},
        "customer": {
            "name": "Ada",
            "tier": "pro",
            "orders": [
                {
                    "id": "00000000-0000-0000-0000-000000000007",
                    "total": "12.50",
                    "tags": ["a", "b"],
                    "lang": "de",
                }
            ],
        },
        "lang": "en",
        "money": "12.50 EUR",
        "opaque": f"<{__name__}.Opaque>",  # stable: no memory address
        "7": "int keys too",
    }
    assert to_json(JSONText('{"raw": true}')) == '{"raw": true}'


def test_framework_objects_are_detected_without_hiding_data() -> None:
    app = FastAPI()
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "app": app})
    assert is_framework_object(request)
    assert is_framework_object(BackgroundTasks())
    assert is_framework_object(JSONResponse({"a": 1}))
    assert is_framework_object(lambda: None)
    for data in (Ticket(text="t", lang="de"), {"a": 1}, [1], "s", 3, None, Lang.DE):
        assert not is_framework_object(data)
    assert json.loads(to_json({"t": Ticket(text="t", lang="de"), "r": request})) == {
        "t": {"text": "t", "lang": "de", "created": None},
        "r": None,
    }


def test_call_payload_names_arguments_and_drops_framework_objects() -> None:
    def endpoint(ticket: Ticket, request: Request, tasks: BackgroundTasks) -> None: ...

    def many(a: int, b: str, *rest: int, request: Any = None, **extra: Any) -> None: ...

    class Service:
        def handle(self, ticket: Ticket) -> None: ...

    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    ticket = Ticket(text="Rechnung falsch", lang="de")
    shape = call_shape(endpoint)
    assert (
        call_payload(shape, (), {"ticket": ticket, "request": request, "tasks": BackgroundTasks()})
        is ticket
    )
    assert call_payload(call_shape(many), (1, "x", 5, 6), {"request": request, "k": 2}) == {
        "a": 1,
        "b": "x",
        "rest0": 5,
        "rest1": 6,
        "k": 2,
    }
    assert call_payload(call_shape(Service.handle), (Service(), ticket), {}) is ticket


def test_a_fastapi_endpoint_with_the_decorator_records_json(emitter: RecordingEmitter) -> None:
    app = FastAPI()

    @app.post("/v1/classify")
    @emitter.shadowed("/v1/classify", attributes=lambda ticket, **_: {"language": ticket.lang})
    async def classify(
        ticket: Ticket, request: Request, background_tasks: BackgroundTasks
    ) -> Label:
        return Label(label="billing", score=0.9)

    @app.post("/v1/raw")
    @emitter.shadowed("/v1/raw", output=lambda response: {"wrapped": json.loads(response.body)})
    def raw(ticket: Ticket) -> JSONResponse:
        return JSONResponse({"label": ticket.lang})

    @app.post("/v1/response")
    @emitter.shadowed("/v1/response")
    def response(ticket: Ticket) -> JSONResponse:
        return JSONResponse({"label": ticket.text})

    with TestClient(app) as client:
        body = {"text": "Rechnung falsch", "lang": "de"}
        assert client.post("/v1/classify", json=body).json() == {"label": "billing", "score": 0.9}
        client.post("/v1/raw", json=body)
        client.post("/v1/response", json=body)
    requests, responses = emitter.requests(), emitter.responses()
    assert [json.loads(r["payload"]) for r in requests] == [{**body, "created": None}] * 3
    assert requests[0]["attributes"] == {"language": "de"}
    assert [json.loads(r["output"]) for r in responses] == [
        {"label": "billing", "score": 0.9},
        {"wrapped": {"label": "de"}},
        {"label": "Rechnung falsch"},
    ]


def test_a_failing_output_extractor_loses_the_output_not_the_call(
    emitter: RecordingEmitter,
) -> None:
    @emitter.shadowed("/x", output=lambda result: 1 / 0)
    async def handler(x: int) -> int:
        return x

    assert asyncio.run(handler(3)) == 3
    assert emitter.responses()[0]["output"] is None
    assert emitter.responses()[0]["status"] == "ok"
