"""A challenger served over HTTP (httpx, one pooled async client per challenger).

The request body is the input payload as JSON, or a template (see
:class:`shadowstream.config.HttpAdapterSpec`). Header values can come from env
vars so secrets stay out of config files; they are never logged. Retries are
off: a retry changes the latency being measured.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from shadowstream.config import HttpAdapterSpec
from shadowstream.errors import ChallengerError
from stream_agents.challengers.base import ChallengeContext, ModelAnswer


class HttpStatusError(Exception):
    """The challenger endpoint answered with a non-2xx status."""


def dig(value: Any, path: str | None) -> Any:
    """``dig({"a": {"b": [1, 2]}}, "a.b.1") -> 2``; None when the path is absent."""
    if path is None or path in ("", "$"):
        return value
    for part in path.removeprefix("$.").split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def render(template: Any, payload: Any, context: ChallengeContext) -> Any:
    if isinstance(template, dict):
        return {k: render(v, payload, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, payload, context) for v in template]
    if isinstance(template, str) and template.startswith("$"):
        if template == "$payload":
            return payload
        if template.startswith("$payload."):
            return dig(payload, template[len("$payload.") :])
        if template == "$request_id":
            return context.request_id
        if template == "$endpoint":
            return context.endpoint
        if template == "$attributes":
            return context.attributes
        if template == "$tool_trace":
            return context.tool_trace
    return template


def _as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class HttpAdapter:
    def __init__(self, name: str, spec: HttpAdapterSpec, concurrency: int = 8) -> None:
        self.name = name
        self.spec = spec
        headers = dict(spec.headers)
        for header, env_var in spec.headers_from_env.items():
            value = os.environ.get(env_var)
            if value is None:
                raise ChallengerError(
                    f"challenger {name!r}: env var {env_var} (for header {header}) is not set"
                )
            headers[header] = value
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        # the runtime enforces the challenger timeout; this is only a backstop
        self._client = httpx.AsyncClient(headers=headers, limits=limits, timeout=None)

    async def invoke(self, payload: Any, context: ChallengeContext) -> ModelAnswer:
        spec = self.spec
        body = payload if spec.request_body == "payload" else render(spec.request_body, payload, context)
        if spec.method == "GET":
            params = body if isinstance(body, dict) else {"q": body}
            response = await self._client.get(spec.url, params=params)
        else:
            response = await self._client.request(spec.method, spec.url, json=body)
        if response.status_code >= 400:
            raise HttpStatusError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            data: Any = response.json()
        except ValueError:
            data = response.text
        tool_calls = dig(data, spec.tool_calls_path)
        if isinstance(tool_calls, list):
            tool_calls = len(tool_calls)
        cost = dig(data, spec.cost_path)
        return ModelAnswer(
            output=dig(data, spec.output_path),
            tokens_in=_as_int(dig(data, spec.tokens_in_path)),
            tokens_out=_as_int(dig(data, spec.tokens_out_path)),
            tool_calls=_as_int(tool_calls),
            cost=float(cost) if isinstance(cost, (int, float)) else None,
        )

    async def close(self) -> None:
        await self._client.aclose()
