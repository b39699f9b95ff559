"""Challenger adapters against a real local HTTP server, callables, timeouts, retries, usage."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shadowstream.core.config import ChallengerSpec, HttpAdapterSpec
from shadowstream.core.errors import ChallengerError, ShadowstreamError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.stream_agents.challengers import ChallengerCallError, build_adapter
from shadowstream.stream_agents.challengers.base import ChallengeContext, ModelAnswer, answer_usage
from shadowstream.stream_agents.challengers.http_adapter import HttpAdapter, HttpStatusError, render
from shadowstream.stream_agents.challengers.worker import ChallengerWorkerService

CONTEXT = ChallengeContext(
    request_id="req-1",
    endpoint="/chat",
    attributes={"tier": "gold"},
    tool_trace=[{"name": "search", "arguments": {"q": "oslo"}, "result": "rainy"}],
)


class ModelServer:
    """A tiny OpenAI-ish model server on 127.0.0.1 (real sockets, real HTTP)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.status = 200
        self.raw_body: bytes | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self, body: Any) -> None:
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )

            def _reply(self) -> None:
                if server.delay_s:
                    time.sleep(server.delay_s)
                if server.raw_body is not None:
                    payload = server.raw_body
                else:
                    last = server.requests[-1]["body"] or {}
                    text = last.get("prompt") if isinstance(last, dict) else None
                    payload = json.dumps(
                        {
                            "id": "cmpl-1",
                            "choices": [
                                {
                                    "message": {
                                        "content": f"echo: {text}",
                                        "tool_calls": [{"function": {"name": "f"}}],
                                    }
                                }
                            ],
                            "usage": {"prompt_tokens": 12, "completion_tokens": 34},
                            "cost": 0.0021,
                            "trace": [{"name": "search", "arguments": {"q": "oslo"}}],
                        }
                    ).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self._record(json.loads(self.rfile.read(length) or b"null"))
                self._reply()

            def do_PUT(self) -> None:
                self.do_POST()

            def do_GET(self) -> None:
                self._record(parse_qs(urlsplit(self.path).query))
                self._reply()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/complete"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ModelServer]:
    model_server = ModelServer()
    try:
        yield model_server
    finally:
        model_server.close()


def openai_like(url: str, **extra: Any) -> HttpAdapterSpec:
    values: dict[str, Any] = {
        "url": url,
        "request_body": {"prompt": "$payload.text", "user": "$request_id"},
        "output_path": "choices.0.message.content",
        "tokens_in_path": "$.usage.prompt_tokens",
        "tokens_out_path": "usage.completion_tokens",
        "tool_calls_path": "choices[0].message.tool_calls",
        "cost_path": "cost",
    }
    values.update(extra)
    return HttpAdapterSpec(**values)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- HTTP adapter ----------------------------------------------------------------------------


def test_http_adapter_maps_request_and_response(server: ModelServer) -> None:
    async def scenario() -> ModelAnswer:
        adapter = HttpAdapter("gpt", openai_like(server.url, tool_trace_path="trace"))
        try:
            return await adapter.invoke({"text": "hello"}, CONTEXT)
        finally:
            await adapter.close()

    answer = run(scenario())
    assert answer.output == "echo: hello"
    assert (answer.tokens_in, answer.tokens_out, answer.tool_calls, answer.cost) == (
        12,
        34,
        1,
        0.0021,
    )
    assert answer.tool_trace == [{"name": "search", "arguments": {"q": "oslo"}}]
    sent = server.requests[0]
    assert sent["method"] == "POST" and sent["path"] == "/v1/complete"
    assert sent["body"] == {"prompt": "hello", "user": "req-1"}
    assert sent["headers"]["content-type"] == "application/json"


def test_secret_headers_come_from_env(server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_API_KEY", "s3cret")
    monkeypatch.setenv("MODEL_ORG", "org-7")
    spec = openai_like(
        server.url,
        headers={"x-team": "ml"},
        headers_from_env={"Authorization": "Bearer ${MODEL_API_KEY}", "x-org": "MODEL_ORG"},
    )

    async def scenario() -> None:
        adapter = HttpAdapter("gpt", spec)
        try:
            await adapter.invoke({"text": "x"}, CONTEXT)
        finally:
            await adapter.close()

    run(scenario())
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-org"] == "org-7" and headers["x-team"] == "ml"
    assert "s3cret" not in repr(spec)  # config holds only the variable's name


def test_missing_secret_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    spec = HttpAdapterSpec(
        url="http://127.0.0.1:9/x", headers_from_env={"Authorization": "NOPE_KEY"}
    )
    with pytest.raises(ChallengerError, match="NOPE_KEY"):
        HttpAdapter("gpt", spec)


def test_templates_substitute_context_and_interpolate_strings() -> None:
    template = {
        "messages": [
            {"role": "user", "content": "Classify: ${payload.text} (tier ${payload.tier})"}
        ],
        "id": "$request_id",
        "where": "$endpoint",
        "attrs": "$attributes",
        "replay": "$tool_trace",
        "raw": "$payload",
        "price": "$5",
        "nested": "${payload.meta}",
    }
    payload = {"text": "refund please", "tier": 2, "meta": {"a": 1}}
    body = render(template, payload, CONTEXT)
    assert body["messages"][0]["content"] == "Classify: refund please (tier 2)"
    assert body["id"] == "req-1" and body["where"] == "/chat"
    assert body["attrs"] == {"tier": "gold"}
    assert body["replay"] == CONTEXT.tool_trace
    assert body["raw"] == payload
    assert body["price"] == "$5"  # not a variable: left alone
    assert body["nested"] == '{"a":1}'


def test_get_sends_query_parameters(server: ModelServer) -> None:
    spec = HttpAdapterSpec(
        url=server.url, method="GET", request_body={"q": "$payload.text", "k": 3}, output_path="id"
    )

    async def scenario() -> ModelAnswer:
        adapter = HttpAdapter("search", spec)
        try:
            return await adapter.invoke({"text": "blue shoes"}, CONTEXT)
        finally:
            await adapter.close()

    assert run(scenario()).output == "cmpl-1"
    assert server.requests[0]["body"] == {"q": ["blue shoes"], "k": ["3"]}


def test_http_errors_and_unmappable_answers_are_errors(server: ModelServer) -> None:
    async def call(spec: HttpAdapterSpec) -> ModelAnswer:
        adapter = HttpAdapter("gpt", spec)
        try:
            return await adapter.invoke({"text": "x"}, CONTEXT)
        finally:
            await adapter.close()

    server.status = 503
    with pytest.raises(HttpStatusError) as info:
        run(call(openai_like(server.url)))
    assert info.value.status_code == 503
    assert isinstance(info.value, ShadowstreamError)
    server.status = 200
    server.raw_body = b'{"unexpected": true}'
    with pytest.raises(ChallengerCallError, match=r"no choices\.0\.message\.content"):
        run(call(openai_like(server.url)))
    server.raw_body = b"plain text answer"
    answer = run(call(HttpAdapterSpec(url=server.url)))
    assert answer.output == "plain text answer"  # no output_path: the whole body


def test_bad_response_path_is_rejected_at_start() -> None:
    with pytest.raises(ChallengerError):
        HttpAdapter("gpt", HttpAdapterSpec(url="http://127.0.0.1:9/x", output_path="a[[0"))


# -- the worker's call: timeouts always on, retries off by default -------------------------------


def worker_for(spec: ChallengerSpec) -> ChallengerWorkerService:
    service = ChallengerWorkerService(
        kafka=KafkaClientConfig("127.0.0.1:9"),
        topics=TopicNames("unit"),
        spec=spec,
        window_s=30,
    )
    service.adapter = build_adapter(spec)
    return service


def test_timeout_is_enforced_and_reported(server: ModelServer) -> None:
    server.delay_s = 2.0
    spec = ChallengerSpec(name="slow", http=openai_like(server.url), timeout_seconds=0.3)

    async def scenario() -> tuple[Any, ...]:
        service = worker_for(spec)
        try:
            return await service._invoke({"text": "x"}, CONTEXT)
        finally:
            await service.adapter.close()

    started = time.monotonic()
    answer, status, error, latency_ms = run(scenario())
    assert time.monotonic() - started < 1.5
    assert answer is None and status == "timeout" and "0.3" in (error or "")
    assert 280 <= latency_ms < 1000


@pytest.mark.parametrize(("retries", "hits"), [(0, 1), (2, 3)])
def test_retries_are_off_unless_asked(server: ModelServer, retries: int, hits: int) -> None:
    server.status = 500
    spec = ChallengerSpec(name="flaky", http=openai_like(server.url), retries=retries)

    async def scenario() -> tuple[Any, ...]:
        service = worker_for(spec)
        try:
            return await service._invoke({"text": "x"}, CONTEXT)
        finally:
            await service.adapter.close()

    _answer, status, error, _ = run(scenario())
    assert status == "error" and "HTTP 500" in (error or "")
    assert len(server.requests) == hits


def test_latency_and_usage_reach_the_response(server: ModelServer) -> None:
    server.delay_s = 0.05
    spec = ChallengerSpec(name="gpt", http=openai_like(server.url))

    async def scenario() -> tuple[Any, ...]:
        service = worker_for(spec)
        try:
            return await service._invoke({"text": "hi"}, CONTEXT)
        finally:
            await service.adapter.close()

    answer, status, error, latency_ms = run(scenario())
    assert status == "ok" and error is None and latency_ms >= 50
    assert answer_usage(answer, spec) == {
        "tokens_in": 12,
        "tokens_out": 34,
        "tool_calls": 1,
        "cost": 0.0021,
    }


# -- callable adapter -----------------------------------------------------------------------------

CALLS: dict[str, Any] = {}


def sync_model(payload: dict[str, Any]) -> dict[str, Any]:
    CALLS["sync_thread"] = threading.current_thread().name
    return {"upper": payload["text"].upper()}


async def async_model(payload: dict[str, Any], context: ChallengeContext) -> ModelAnswer:
    CALLS["async_thread"] = threading.current_thread().name
    CALLS["trace"] = context.tool_trace
    return ModelAnswer(
        output={"answer": "rainy"},
        tokens_in=1000,
        tokens_out=500,
        tool_trace=[{"name": "search", "arguments": {"q": "oslo"}}],
    )


def test_callable_adapters_sync_in_pool_async_on_loop() -> None:
    module = __name__

    async def scenario() -> tuple[ModelAnswer, ModelAnswer]:
        sync = build_adapter(ChallengerSpec(name="s", callable=f"{module}:sync_model"))
        asyncio_ = build_adapter(ChallengerSpec(name="a", callable=f"{module}:async_model"))
        try:
            return (
                await sync.invoke({"text": "hi"}, CONTEXT),
                await asyncio_.invoke({"text": "hi"}, CONTEXT),
            )
        finally:
            await sync.close()
            await asyncio_.close()

    first, second = run(scenario())
    assert first.output == {"upper": "HI"} and first.tokens_in is None
    assert CALLS["sync_thread"].startswith("challenger-s")
    assert CALLS["async_thread"] == "MainThread"
    assert CALLS["trace"] == CONTEXT.tool_trace  # record-replay input reaches the model
    assert second.output == {"answer": "rainy"}


def test_cost_is_computed_from_prices_when_not_reported() -> None:
    spec = ChallengerSpec(
        name="a", callable="m:f", cost_per_1k_tokens_in=0.5, cost_per_1k_tokens_out=1.5
    )
    usage = answer_usage(
        ModelAnswer(
            output=1, tokens_in=1000, tokens_out=500, tool_trace=[{"name": "x"}, {"name": "y"}]
        ),
        spec,
    )
    assert usage == {"tokens_in": 1000, "tokens_out": 500, "tool_calls": 2, "cost": 1.25}
    # a reported cost wins; unknown token counts give no made-up cost
    assert answer_usage(ModelAnswer(output=1, tokens_in=1, cost=9.0), spec)["cost"] == 9.0
    assert answer_usage(ModelAnswer(output=1, tokens_in=10), spec)["cost"] is None
    assert answer_usage(None, spec)["cost"] is None
