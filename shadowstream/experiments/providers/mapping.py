"""From a batch item to a provider request body, and from the provider's answer to an output.

Request body (``batch_api.request_body``): a template rendered like an HTTP
challenger's (``"$payload"``, ``"$payload.messages"``, ``"${payload.text}"``,
``"$request_id"``, ...), or by default a chat body built from the payload:

* a JSON object with ``messages``: sent as the body (its other keys too);
* a string: one user message with it;
* anything else: one user message with its JSON.

``params`` are added to every body (the template's own keys win), and
``model`` defaults to the challenger's model. The other OpenAI endpoints take
the payload as ``input`` (``/v1/responses``, ``/v1/embeddings``) or
``prompt`` (``/v1/completions``). Anthropic needs ``max_tokens``: 1024
unless set.

Output (``output_path``, dotted like ``choices.0.message.content``), by
default the answer's text: OpenAI chat ``choices[0].message.content``,
Responses API the ``output_text`` parts, embeddings ``data[0].embedding``,
completions ``choices[0].text``; Anthropic the text blocks of ``content``.
``output_json = true`` parses a text answer that is valid JSON (structured
output compared as JSON). Tokens: ``usage.prompt_tokens`` /
``completion_tokens`` (OpenAI chat), ``usage.input_tokens`` /
``output_tokens`` (Anthropic, Responses API), or the configured paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shadowstream.core.challenger_config import BatchApiSpec, ChallengerSpec
from shadowstream.experiments.items import BatchItem
from shadowstream.stream_agents.challengers.base import ChallengeContext
from shadowstream.stream_agents.challengers.http_adapter import dig, render
from shadowstream.stream_agents.comparators.paths import MISSING, PathSelector

ANTHROPIC_MAX_TOKENS = 1024


class MappingError(ValueError):
    """The provider's answer lacks what the mapping reads (an error response for the item)."""


def _decoded(payload: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload


def _as_message_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class RequestMapper:
    def __init__(self, challenger: ChallengerSpec) -> None:
        assert challenger.batch_api is not None
        self.spec: BatchApiSpec = challenger.batch_api
        self.model = self.spec.model or challenger.model_id

    def body(self, item: BatchItem, request_id: str, experiment_id: str) -> dict[str, Any]:
        payload = _decoded(item.payload)
        spec = self.spec
        if spec.request_body is not None:
            context = ChallengeContext(request_id, item.endpoint, item.attributes, experiment_id)
            rendered = render(spec.request_body, payload, context)
            body = {**spec.params, **(rendered if isinstance(rendered, dict) else {})}
        else:
            body = {**spec.params, **self._default(payload)}
        body.setdefault("model", self.model)
        if spec.provider == "anthropic":
            body.setdefault("max_tokens", ANTHROPIC_MAX_TOKENS)
        return body

    def _default(self, payload: Any) -> dict[str, Any]:
        endpoint = self.spec.endpoint if self.spec.provider == "openai" else "/v1/messages"
        if endpoint in ("/v1/responses", "/v1/embeddings"):
            return {
                "input": payload if isinstance(payload, str | list) else _as_message_text(payload)
            }
        if endpoint == "/v1/completions":
            return {"prompt": _as_message_text(payload)}
        if isinstance(payload, dict) and isinstance(payload.get("messages"), list):
            return dict(payload)
        return {"messages": [{"role": "user", "content": _as_message_text(payload)}]}


def _selector(path: str | None) -> PathSelector | None:
    return PathSelector(path) if path else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ResponseMapper:
    def __init__(self, spec: BatchApiSpec) -> None:
        self.spec = spec
        self._output = _selector(spec.output_path)
        openai_chat = spec.provider == "openai" and spec.endpoint != "/v1/responses"
        default_in, default_out = (
            ("usage.prompt_tokens", "usage.completion_tokens")
            if openai_chat
            else ("usage.input_tokens", "usage.output_tokens")
        )
        self._tokens_in = PathSelector(spec.tokens_in_path or default_in)
        self._tokens_out = PathSelector(spec.tokens_out_path or default_out)

    def output(self, body: Mapping[str, Any]) -> tuple[Any, int | None, int | None]:
        """(output, tokens in, tokens out); MappingError when the output is not there."""
        if self._output is not None:
            value = self._output(body)
            if value is MISSING:
                raise MappingError(f"response has no {self.spec.output_path}")
        else:
            value = self._default_output(body)
        if self.spec.output_json and isinstance(value, str):
            value = _decoded(value)
        tokens_in, tokens_out = self._tokens_in(body), self._tokens_out(body)
        return (
            value,
            None if tokens_in is MISSING else _int(tokens_in),
            None if tokens_out is MISSING else _int(tokens_out),
        )

    def _default_output(self, body: Mapping[str, Any]) -> Any:
        spec = self.spec
        if spec.provider == "anthropic":
            blocks = body.get("content")
            if not isinstance(blocks, list):
                raise MappingError("response has no content")
            return "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        if spec.endpoint == "/v1/responses":
            parts = [
                str(c.get("text", ""))
                for item in body.get("output") or []
                for c in (item.get("content") or [])
                if isinstance(c, dict) and c.get("type") == "output_text"
            ]
            return "".join(parts)
        path = {
            "/v1/embeddings": "data.0.embedding",
            "/v1/completions": "choices.0.text",
        }.get(spec.endpoint, "choices.0.message.content")
        value = dig(body, path)
        if value is None and path.endswith("message.content"):
            calls = dig(body, "choices.0.message.tool_calls")
            if calls is not None:
                return calls  # an answer made of tool calls
        if value is None:
            raise MappingError(f"response has no {path}")
        return value


def batch_prices(challenger: ChallengerSpec) -> tuple[float | None, float | None]:
    """$/1k tokens in and out at the batch price: the configured batch prices, else the
    live prices times ``price_factor`` (providers charge 50% for batch work)."""
    spec = challenger.batch_api
    assert spec is not None

    def price(batch: float | None, live: float | None) -> float | None:
        if batch is not None:
            return batch
        return None if live is None else live * spec.price_factor

    return (
        price(spec.cost_per_1k_tokens_in, challenger.cost_per_1k_tokens_in),
        price(spec.cost_per_1k_tokens_out, challenger.cost_per_1k_tokens_out),
    )


def cost(
    prices: tuple[float | None, float | None], tokens_in: int | None, tokens_out: int | None
) -> float | None:
    price_in, price_out = prices
    if price_in is None and price_out is None:
        return None
    if (price_in and tokens_in is None) or (price_out and tokens_out is None):
        return None
    return ((tokens_in or 0) * (price_in or 0.0) + (tokens_out or 0) * (price_out or 0.0)) / 1000
