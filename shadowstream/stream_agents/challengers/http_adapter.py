"""A challenger served over HTTP (httpx, one pooled async client per challenger).

Request (see :class:`shadowstream.core.config.HttpAdapterSpec`):

* ``request_body = "payload"`` sends the input payload as the JSON body; a
  dict is a template whose values are substituted: ``"$payload"``,
  ``"$payload.a.b"``, ``"$request_id"``, ``"$endpoint"``, ``"$attributes"``,
  ``"$experiment_id"``, ``"$tool_trace"`` (the champion's recorded tool calls,
  for record-replay), and ``${...}`` of the same names inside longer strings
  (``"Classify: ${payload.text}"``). GET sends the body's top-level keys as
  query parameters.
* Headers: ``headers`` verbatim; ``headers_from_env`` maps a header to the
  env var holding its value, or to a template such as ``"Bearer ${API_KEY}"``,
  so secrets stay out of config files. Missing env vars fail at start-up;
  header values are never logged.

Response: ``output_path``, ``tokens_in_path``, ``tokens_out_path``,
``tool_calls_path`` (a number, or a list that is counted), ``cost_path`` and
``tool_trace_path`` select from the JSON body (``choices.0.message.content``
or ``$.choices[0].message.content``). A configured ``output_path`` that is
not in the response is an error, not an empty answer.

Timeouts: the worker enforces the challenger's ``timeout_seconds``; the
client carries the same timeout plus a second as a backstop. Retries are off
here (a retry changes the latency being measured); the worker retries only
when the challenger's ``retries`` asks for it.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from shadowstream.core.challenger_config import HttpAdapterSpec
from shadowstream.core.errors import ChallengerError, ConfigError
from shadowstream.core.secrets import redact_text, redact_url, register_secret, register_url_secrets
from shadowstream.producers.tracing import current_traceparent
from shadowstream.stream_agents.challengers.base import (
    ChallengeContext,
    ChallengerCallError,
    ModelAnswer,
)
from shadowstream.stream_agents.comparators.paths import MISSING, PathSelector

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w.\-\[\]]*)\}")
_AUTH_HEADERS = ("authorization", "proxy-authorization")
log = logging.getLogger(__name__)


class HttpStatusError(ChallengerCallError):
    """The challenger endpoint answered with a non-2xx status."""

    def __init__(self, status_code: int, body: str) -> None:
        self.status_code = status_code
        # the body may quote the request's credentials back (a 401 echoing Authorization)
        super().__init__(f"HTTP {status_code}: {redact_text(body[:200])}")


def dig(value: Any, path: str | None) -> Any:
    """``dig({"a": {"b": [1, 2]}}, "a.b.1") -> 2``; None when the path is absent."""
    if path is None or path in ("", "$"):
        return value
    found = PathSelector(path)(value)
    return None if found is MISSING else found


def _variable(name: str, payload: Any, context: ChallengeContext) -> Any:
    if name == "payload":
        return payload
    if name.startswith("payload."):
        found = PathSelector(name[len("payload.") :])(payload)
        return None if found is MISSING else found
    if name == "request_id":
        return context.request_id
    if name == "endpoint":
        return context.endpoint
    if name == "attributes":
        return context.attributes
    if name == "experiment_id":
        return context.experiment_id
    if name == "tool_trace":
        return context.tool_trace
    return MISSING


def render(template: Any, payload: Any, context: ChallengeContext) -> Any:
    """Substitute ``$name`` values and ``${name}`` inside strings (see the module doc)."""
    if isinstance(template, dict):
        return {k: render(v, payload, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, payload, context) for v in template]
    if not isinstance(template, str) or "$" not in template:
        return template
    if template.startswith("$") and not template.startswith("${"):
        value = _variable(template[1:], payload, context)
        return template if value is MISSING else value

    def interpolate(match: re.Match[str]) -> str:
        value = _variable(match.group(1), payload, context)
        if value is MISSING:
            return match.group(0)
        if isinstance(value, str):
            return value
        return "" if value is None else orjson.dumps(value).decode()

    return _INTERPOLATION.sub(interpolate, template)


def resolve_headers(name: str, spec: HttpAdapterSpec) -> dict[str, str]:
    """Static headers plus secrets from the environment; ChallengerError if one is unset."""
    headers = dict(spec.headers)
    for header, source in spec.headers_from_env.items():
        template = source if "${" in source else "${" + source + "}"
        parts = _INTERPOLATION.split(template)  # literal, var, literal, var, ..., literal
        headers[header] = "".join(
            _env_value(name, header, part) if i % 2 else part for i, part in enumerate(parts)
        )
    return headers


def _env_value(challenger: str, header: str, env_var: str) -> str:
    value = os.environ.get(env_var)
    if value is None:
        raise ChallengerError(
            f"challenger {challenger!r}: env var {env_var} (for header {header}) is not set"
        )
    register_secret(value)  # a header value from the environment is never printed
    return value


def warn_url_credentials(name: str, spec: HttpAdapterSpec) -> bool:
    """Once, at start-up: credentials in the URL replace a configured Authorization header."""
    try:
        has_userinfo = urlsplit(spec.url).username is not None
    except ValueError:
        return False
    configured = [h for h in (*spec.headers, *spec.headers_from_env) if h.lower() in _AUTH_HEADERS]
    if has_userinfo and configured:
        log.warning(
            "challenger %r: the credentials in its URL (%s) replace the configured %s "
            "header; remove one of them",
            name,
            redact_url(spec.url),
            configured[0],
        )
        return True
    return False


def _as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _selector(path: str | None, what: str) -> PathSelector | None:
    if path is None:
        return None
    try:
        return PathSelector(path)
    except ConfigError as exc:
        raise ChallengerError(f"http {what}: {exc}") from None


class HttpAdapter:
    def __init__(
        self,
        name: str,
        spec: HttpAdapterSpec,
        concurrency: int = 8,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.name = name
        self.spec = spec
        register_url_secrets(spec.url)
        headers = resolve_headers(name, spec)
        warn_url_credentials(name, spec)
        self._output = _selector(spec.output_path, "output_path")
        self._tokens_in = _selector(spec.tokens_in_path, "tokens_in_path")
        self._tokens_out = _selector(spec.tokens_out_path, "tokens_out_path")
        self._tool_calls = _selector(spec.tool_calls_path, "tool_calls_path")
        self._cost = _selector(spec.cost_path, "cost_path")
        self._tool_trace = _selector(spec.tool_trace_path, "tool_trace_path")
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(
            headers=headers,
            limits=limits,
            timeout=httpx.Timeout(timeout_seconds + 1.0),
            follow_redirects=False,
        )

    def _body(self, payload: Any, context: ChallengeContext) -> Any:
        if self.spec.request_body == "payload":
            return payload
        return render(self.spec.request_body, payload, context)

    async def invoke(self, payload: Any, context: ChallengeContext) -> ModelAnswer:
        spec = self.spec
        body = self._body(payload, context)
        # inside a challenger span (otel_challenger_spans): the endpoint joins the trace
        traceparent = current_traceparent()
        trace_headers = {"traceparent": traceparent} if traceparent else {}
        if spec.method == "GET":
            items = body.items() if isinstance(body, dict) else [("q", body)]
            params = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in items}
            response = await self._client.get(spec.url, params=params, headers=trace_headers)
        else:
            response = await self._client.request(
                spec.method,
                spec.url,
                content=orjson.dumps(body),
                headers={"content-type": "application/json", **trace_headers},
            )
        if response.status_code >= 300:
            raise HttpStatusError(response.status_code, response.text)
        try:
            data: Any = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = response.text
        return self._answer(data)

    def _answer(self, data: Any) -> ModelAnswer:
        output = data
        if self._output is not None:
            output = self._output(data)
            if output is MISSING:
                raise ChallengerCallError(
                    f"response has no {self.spec.output_path}: {redact_text(str(data)[:200])}"
                )
        trace = _pick(self._tool_trace, data)
        tool_calls = _pick(self._tool_calls, data)
        if isinstance(tool_calls, list):
            tool_calls = len(tool_calls)
        elif tool_calls is None and isinstance(trace, list):
            tool_calls = len(trace)
        cost = _pick(self._cost, data)
        return ModelAnswer(
            output=output,
            tokens_in=_as_int(_pick(self._tokens_in, data)),
            tokens_out=_as_int(_pick(self._tokens_out, data)),
            tool_calls=_as_int(tool_calls),
            cost=float(cost)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool)
            else None,
            tool_trace=trace,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _pick(selector: PathSelector | None, data: Any) -> Any:
    if selector is None:
        return None
    found = selector(data)
    return None if found is MISSING else found
