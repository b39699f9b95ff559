"""What ShadowMiddleware observes of one HTTP exchange, and how it finds the route template.

Kept apart from the middleware so the ASGI plumbing and the bookkeeping can be
read (and tested) on their own.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover - exercised where orjson is absent
    from json import loads as json_loads  # type: ignore[assignment]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

__all__ = [
    "Exchange",
    "HttpShadowStats",
    "Message",
    "Scope",
    "ShadowedRequest",
    "is_json_type",
    "json_loads",
    "resolve_route",
]


@dataclass
class HttpShadowStats:
    """What the middleware did; pass one in (``stats=``) to read it."""

    shadowed: int = 0
    skipped_streaming: int = 0
    skipped_non_json: int = 0
    skipped_oversize: int = 0
    skipped_client_error: int = 0
    skipped_disconnected: int = 0
    skipped_incomplete: int = 0
    internal_errors: int = 0  # a bug in the capture: the request was served regardless


@dataclass
class ShadowedRequest:
    """One selected request, as the ``payload``/``attributes`` callables see it."""

    method: str
    path: str
    route: str
    path_params: dict[str, Any]
    query: dict[str, Any]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json_loads(self.body) if self.body else None


@dataclass
class Exchange:
    request: ShadowedRequest
    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    request_complete: bool = True
    status: int = 0
    content_type: str = ""
    encoded: bool = False
    body_messages: int = 0
    response_chunks: list[bytes] = field(default_factory=list)
    response_size: int = 0
    finished_at: float = 0.0
    oversize: bool = False
    unsupported: bool = False

    def on_request(self, message: Message) -> None:
        if message.get("type") != "http.request":
            return
        body = message.get("body") or b""
        self.request_complete = not message.get("more_body", False)
        self.size += len(body)
        if self.size > self.limit:
            self.oversize, self.chunks = True, []
        elif body:
            self.chunks.append(body)

    def on_response(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self.status = int(message.get("status", 0))
            for name, value in message.get("headers") or ():
                lower = bytes(name).lower()
                if lower == b"content-type":
                    self.content_type = bytes(value).decode("latin-1").lower()
                elif lower == b"content-encoding" and bytes(value).strip() not in (
                    b"",
                    b"identity",
                ):
                    self.encoded = True
        elif kind == "http.response.body":
            self.body_messages += 1
            body = message.get("body") or b""
            self.response_size += len(body)
            if self.response_size > self.limit:
                self.oversize, self.response_chunks = True, []
            elif body:
                self.response_chunks.append(body)
        elif kind is not None and kind.startswith("http.response."):  # pathsend, trailers...
            self.unsupported = True


def is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip()
    return media == "application/json" or media.endswith("+json")


def _full_match(match: Any) -> bool:
    return getattr(match, "name", None) == "FULL"


def resolve_route(routes: Sequence[Any], scope: Scope) -> tuple[str, dict[str, Any]] | None:
    """(route template, path params) of the first route that matches, Starlette's way."""
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(scope)
        if not _full_match(match):
            continue
        params = dict(child.get("path_params") or {})
        inner = getattr(route, "routes", None)
        if inner:  # a Mount: resolve inside it, relative to its prefix
            found = resolve_route(inner, {**scope, **child})
            if found is None:
                return None
            prefix = str(getattr(route, "path", "") or "").rstrip("/")
            return prefix + found[0], {**params, **found[1]}
        # path_format: "/items/{id}" for "/items/{id:int}"
        template = getattr(route, "path_format", None) or getattr(route, "path", "") or ""
        return str(template), params
    return None
