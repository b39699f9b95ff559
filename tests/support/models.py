"""Challenger callables used by the tests (importable as tests.support.models:NAME)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


def champion_output(payload: dict[str, Any]) -> dict[str, Any]:
    """What the test 'production service' answers."""
    i = int(payload["i"])
    return {"a": i, "b": f"item-{i}", "tags": ["x", "y"]}


async def same(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0.002)
    return champion_output(payload)


async def different_quarter(payload: dict[str, Any]) -> dict[str, Any]:
    """Differs from the champion on $.b for every 4th request; always ~30 ms."""
    await asyncio.sleep(0.03)
    out = champion_output(payload)
    if int(payload["i"]) % 4 == 0:
        out["b"] = "changed"
    return out


def sync_same(payload: dict[str, Any]) -> dict[str, Any]:
    return champion_output(payload)


async def never_answers(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(3600)
    return {}


def hangs(payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(3600)
    return {}


def fails(payload: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("model exploded")


async def slow_for_first(payload: dict[str, Any]) -> dict[str, Any]:
    """Request 0 takes 8 s, every other one is instant."""
    if int(payload["i"]) == 0:
        await asyncio.sleep(8)
    return champion_output(payload)


async def replays_tools(payload: dict[str, Any], context: Any) -> Any:
    """An agent challenger that answers from the champion's recorded tool results."""
    from shadowstream.stream_agents.challengers import ModelAnswer

    trace = context.tool_trace or []
    return ModelAnswer(
        output={**champion_output(payload), "tools_seen": [t["name"] for t in trace]},
        tool_trace=trace,
        tool_calls=len(trace),
    )


async def takes_a_second(payload: dict[str, Any]) -> dict[str, Any]:
    """The champion's answer after 1 s: calls are always in flight under steady traffic."""
    await asyncio.sleep(1.0)
    return champion_output(payload)
