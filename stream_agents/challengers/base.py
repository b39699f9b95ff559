"""The challenger adapter contract and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ChallengeContext:
    """What a challenger may know about the request besides its payload."""

    request_id: str
    endpoint: str
    attributes: dict[str, str] = field(default_factory=dict)
    experiment_id: str = "live"
    # the champion's recorded tool calls and results (record-replay), if any
    tool_trace: Any = None


@dataclass(slots=True)
class ModelAnswer:
    """Return this from a challenger callable to report usage along with the output.

    A challenger that returns anything else returns just its output.
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
