"""No-op challenger models for the throughput benchmarks (answer instantly)."""

from __future__ import annotations

from typing import Any


def echo(payload: Any) -> Any:
    """Sync no-op: returns the input."""
    return payload


async def echo_async(payload: Any) -> Any:
    """Async no-op: returns the input."""
    return payload
