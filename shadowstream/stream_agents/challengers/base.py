"""The challenger adapter contract and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shadowstream.core.errors import ShadowstreamError
from shadowstream.schemas.records import Usage

if TYPE_CHECKING:
    from shadowstream.core.challenger_config import ChallengerSpec


class ChallengerCallError(ShadowstreamError):
    """A challenger was called and did not produce a usable answer (HTTP error, bad body).

    The worker reports it as an ``error`` response; it is never raised out of it.
    """


@dataclass(frozen=True, slots=True)
class ChallengeContext:
    """What a challenger may know about the request besides its payload."""

    request_id: str
    endpoint: str
    attributes: dict[str, str] = field(default_factory=dict)
    experiment_id: str = "live"
    # the champion's recorded tool calls and results (record-replay), if any:
    # the decoded JSON of its ResponseEvent.tool_trace
    tool_trace: Any = None
    # W3C traceparent of the span the service emitted the request from, if any
    traceparent: str | None = None


@dataclass(slots=True)
class ModelAnswer:
    """Return this from a challenger callable to report usage along with the output.

    A challenger that returns anything else returns just its output. Usage is
    optional: ``cost`` left None is computed from the challenger's
    ``cost_per_1k_tokens_*`` prices, ``tool_calls`` left None is the length of
    ``tool_trace`` when that is a list.
    """

    output: Any
    tokens_in: int | None = None
    tokens_out: int | None = None
    tool_calls: int | None = None
    cost: float | None = None
    tool_trace: Any = None


@runtime_checkable
class ChallengerAdapter(Protocol):
    """Calls one challenger model. Timeouts are applied by the runtime, not here."""

    name: str

    async def invoke(self, payload: Any, context: ChallengeContext) -> ModelAnswer: ...

    async def close(self) -> None: ...


def answer_usage(answer: ModelAnswer | None, spec: ChallengerSpec) -> Usage:
    """The ResponseEvent usage of an answer, completed from the challenger's prices.

    Cost the model did not report is computed from ``cost_per_1k_tokens_in`` /
    ``_out`` when the token counts are known; a tool-call count not reported
    is the length of a list ``tool_trace``.
    """
    if answer is None:
        return {"tokens_in": None, "tokens_out": None, "tool_calls": None, "cost": None}
    cost = answer.cost
    if cost is None and (spec.cost_per_1k_tokens_in or spec.cost_per_1k_tokens_out):
        priced = [
            (answer.tokens_in, spec.cost_per_1k_tokens_in),
            (answer.tokens_out, spec.cost_per_1k_tokens_out),
        ]
        if all(tokens is not None for tokens, price in priced if price):
            cost = sum((tokens or 0) * (price or 0.0) / 1000 for tokens, price in priced)
    tool_calls = answer.tool_calls
    if tool_calls is None and isinstance(answer.tool_trace, list):
        tool_calls = len(answer.tool_trace)
    return {
        "tokens_in": answer.tokens_in,
        "tokens_out": answer.tokens_out,
        "tool_calls": tool_calls,
        "cost": cost,
    }
