"""What a source yields: one input to replay and, optionally, its reference answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from shadowstream.schemas.records import Status

REFERENCE_MODEL = "reference"


def to_json(value: Any) -> str:
    """JSON text of a value, as the events carry payloads and outputs."""
    return orjson.dumps(value, default=str).decode()


@dataclass(frozen=True)
class Reference:
    """The answer a challenger is compared with: the champion's stored response,
    or an eval set's reference output (submitted as the champion's response)."""

    output: str | None  # JSON text
    model: str = REFERENCE_MODEL
    latency_ms: float = 0.0
    status: Status = "ok"  # ok | error | timeout
    error: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tool_calls: int | None = None
    cost: float | None = None
    tool_trace: str | None = None  # JSON text


@dataclass(frozen=True)
class BatchItem:
    source_id: str
    endpoint: str
    payload: str  # JSON text (or plain text, as the SDK would send it)
    service: str
    champion_model: str
    attributes: dict[str, str] = field(default_factory=dict)
    reference: Reference | None = None
