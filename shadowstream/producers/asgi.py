"""ASGI middleware: shadow the routes you select, in one line (FastAPI, Starlette, any ASGI app).

    app.add_middleware(ShadowMiddleware, emitter=emitter, routes=["/v1/classify", "/v1/items/{id}"])

For each selected request it records the route template as the endpoint
(``/v1/items/{id}``, not the concrete path), the JSON request body as the
payload, the JSON response body as the champion's output, the latency (first
byte in to last byte out) and the status; attributes come from headers or a
callable. Bodies are observed as they pass, never read ahead, buffered or
changed: the client receives exactly what the app sends, and the events are
emitted after the last byte went out. Requests that cannot be recorded
faithfully are skipped and counted in :class:`HttpShadowStats`: streaming
responses (unless ``streaming="capture"``), non-JSON bodies (unless
``non_json="text"``), bodies over ``max_body_bytes``, client errors (4xx,
unless ``record_client_errors``), disconnects. Needs no framework import:
Starlette-style routers are duck-typed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from shadowstream.producers.http_capture import (
    Exchange,
    HttpShadowStats,
    Message,
    Scope,
    ShadowedRequest,
    is_json_type,
    json_loads,
    resolve_route,
)
from shadowstream.producers.jsonable import JSONText, to_json
from shadowstream.producers.request_ids import new_request_id
from shadowstream.producers.tracing import current_traceparent, request_id_from

if TYPE_CHECKING:
    from shadowstream.producers.emitter import ShadowEmitter

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ShadowMiddleware:
    """Shadow the selected routes of an ASGI app (see the module docstring).

    Args:
        routes: route templates to shadow, or globs over them (``"/v1/*"``).
        methods: HTTP methods to shadow (default: all).
        attributes_from_headers: header name -> attribute name, e.g.
            ``{"x-tenant-tier": "tier"}``.
        attributes: ``fn(ShadowedRequest) -> dict`` of more attributes.
        payload: ``fn(ShadowedRequest) -> payload`` instead of the JSON body
            (default: the body; a request without one records
            ``{"path_params": ..., "query": ...}``).
        request_id_header: take the request id from this header when present.
        max_body_bytes: larger request or response bodies are skipped.
        non_json: ``"skip"`` (count) or ``"text"`` (record the body as a string).
        streaming: ``"skip"`` (count) or ``"capture"`` (up to ``max_body_bytes``).
        record_client_errors: also shadow requests answered with 4xx.
        sample_rate: share of selected requests recorded.
        model: champion model id (default: the emitter's).
        stats: an :class:`HttpShadowStats` to count into.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        emitter: ShadowEmitter,
        routes: Sequence[str],
        methods: Collection[str] | None = None,
        attributes_from_headers: Mapping[str, str] | None = None,
        attributes: Callable[[ShadowedRequest], Mapping[str, str]] | None = None,
        payload: Callable[[ShadowedRequest], Any] | None = None,
        request_id_header: str | None = None,
        max_body_bytes: int = 1_000_000,
        non_json: Literal["skip", "text"] = "skip",
        streaming: Literal["skip", "capture"] = "skip",
        record_client_errors: bool = False,
        sample_rate: float = 1.0,
        model: str | None = None,
        stats: HttpShadowStats | None = None,
    ) -> None:
        self.app = app
        self.emitter = emitter
        self.patterns = list(routes)
        self.methods = {m.upper() for m in methods} if methods else None
        self.header_attributes = {k.lower(): v for k, v in (attributes_from_headers or {}).items()}
        self.attributes = attributes
        self.payload = payload
        self.request_id_header = request_id_header.lower() if request_id_header else None
        self.max_body_bytes = max_body_bytes
        self.non_json = non_json
        self.streaming = streaming
        self.record_client_errors = record_client_errors
        self.sample_rate = sample_rate
        self.model = model
        self.stats = stats if stats is not None else HttpShadowStats()
        self._selected: dict[str, bool] = {}

    def _is_selected(self, template: str) -> bool:
        known = self._selected.get(template)
        if known is None:
            known = any(p == template or fnmatch.fnmatchcase(template, p) for p in self.patterns)
            if len(self._selected) < 10_000:
                self._selected[template] = known
        return known

    def _route(self, scope: Scope) -> tuple[str, dict[str, Any]] | None:
        routes = getattr(scope.get("app"), "routes", None) or getattr(self.app, "routes", None)
        if routes is None:  # not a Starlette-style app: the concrete path is all there is
            return str(scope.get("path", "")), {}
        return resolve_route(routes, scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = None
        if scope.get("type") == "http" and self.emitter.enabled:
            try:
                exchange = self._start(scope)
            except Exception:
                self.stats.internal_errors += 1
        if exchange is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        started_us = time.time_ns() // 1000
        traceparent = current_traceparent() if self.emitter.trace_context else None

        async def observed_receive() -> Message:
            message = await receive()
            try:
                exchange.on_request(message)
            except Exception:
                exchange.unsupported = True
            return message

        async def observed_send(message: Message) -> None:
            try:
                exchange.on_response(message)
            except Exception:
                exchange.unsupported = True
            await send(message)
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                exchange.finished_at = time.perf_counter()

        error: BaseException | None = None
        try:
            await self.app(scope, observed_receive, observed_send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                self._finish(exchange, started, started_us, traceparent, error)
            except Exception:
                self.stats.internal_errors += 1

    def _start(self, scope: Scope) -> Exchange | None:
        method = str(scope.get("method", "GET")).upper()
        if self.methods is not None and method not in self.methods:
            return None
        found = self._route(scope)
        if found is None or not self._is_selected(found[0]):
            return None
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return None
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers") or ()
        }
        query = {
            k: v[0] if len(v) == 1 else v
            for k, v in parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1")).items()
        }
        request = ShadowedRequest(
            method, str(scope.get("path", "")), found[0], found[1], query, headers, b""
        )
        return Exchange(request, self.max_body_bytes)

    def _finish(
        self,
        exchange: Exchange,
        started: float,
        started_us: int,
        traceparent: str | None,
        error: BaseException | None,
    ) -> None:
        skip = self._skip_reason(exchange, error)
        if skip is not None:
            setattr(self.stats, skip, getattr(self.stats, skip) + 1)
            return
        request = exchange.request
        request.body = b"".join(exchange.chunks)
        payload = self._payload(request)
        if payload is None:
            self.stats.skipped_non_json += 1
            return
        output, status, error_text = self._outcome(exchange, error)
        if status == "ok" and output is None and exchange.response_size:
            self.stats.skipped_non_json += 1
            return
        request_id = (
            self._header_request_id(request)
            or request_id_from(traceparent, self.emitter.request_id_from_trace)
            or new_request_id()
        )
        attributes = {
            name: request.headers[header]
            for header, name in self.header_attributes.items()
            if header in request.headers
        }
        if self.attributes is not None:
            # a failing extractor loses the attributes, never the request
            with contextlib.suppress(Exception):
                attributes.update(self.attributes(request))
        ended = exchange.finished_at or time.perf_counter()
        self.emitter.emit_request(
            request_id,
            request.route,
            payload,
            attributes=attributes,
            champion_model=self.model,
            timestamp_us=started_us,
            traceparent=traceparent,
        )
        self.emitter.emit_response(
            request_id,
            output,
            (ended - started) * 1000.0,
            status=status,
            error=error_text,
            model=self.model,
        )
        self.stats.shadowed += 1

    def _skip_reason(self, exchange: Exchange, error: BaseException | None) -> str | None:
        if error is not None and not isinstance(error, Exception):  # cancelled: client gone
            return "skipped_disconnected"
        if exchange.oversize:
            return "skipped_oversize"
        if not exchange.request_complete:
            return "skipped_incomplete"
        if exchange.unsupported or (exchange.body_messages > 1 and self.streaming == "skip"):
            return "skipped_streaming"
        if error is None and exchange.status == 0:
            return "skipped_disconnected"
        if 400 <= exchange.status < 500 and not self.record_client_errors:
            return "skipped_client_error"
        return None

    def _payload(self, request: ShadowedRequest) -> Any:
        if self.payload is not None:
            try:
                return self.payload(request)
            except Exception:
                return None
        if not request.body:
            return {"path_params": request.path_params, "query": request.query}
        return self._json_or_text(request.body, request.headers.get("content-type", ""))

    def _json_or_text(self, body: bytes, content_type: str) -> Any:
        """The body as JSON text; as a JSON string if ``non_json="text"``; else None (skip)."""
        try:
            text: str | None = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and (not content_type or is_json_type(content_type)):
            try:
                json_loads(text)
                return JSONText(text)
            except ValueError:
                pass
        if self.non_json == "text":
            return JSONText(to_json(text if text is not None else body.decode("utf-8", "replace")))
        return None

    def _outcome(
        self, exchange: Exchange, error: BaseException | None
    ) -> tuple[Any, str, str | None]:
        if error is not None:
            return None, "error", f"{type(error).__name__}: {error}"
        body = b"".join(exchange.response_chunks)
        if exchange.status >= 500:
            return (
                None,
                "error",
                f"HTTP {exchange.status}: " + body[:500].decode("utf-8", "replace"),
            )
        if not body or exchange.encoded:
            return None, "ok", None
        return self._json_or_text(body, exchange.content_type), "ok", None

    def _header_request_id(self, request: ShadowedRequest) -> str | None:
        if self.request_id_header is None:
            return None
        value = request.headers.get(self.request_id_header, "").strip()
        return value if 0 < len(value) <= 200 and value.isprintable() else None
