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


def label_for(ticket: dict[str, Any]) -> str:
    """The web test service's champion rule: refunds and invoices are billing."""
    text = str(ticket.get("text", "")).lower()
    return "billing" if any(w in text for w in ("refund", "invoice", "rechnung")) else "other"


async def triage(ticket: dict[str, Any]) -> dict[str, Any]:
    """A challenger for the web test: agrees with the champion except on German tickets."""
    label = label_for(ticket)
    if ticket.get("lang") == "de":
        label = "other" if label == "billing" else "billing"
    return {"label": label, "lang": ticket.get("lang")}


def count_words(ticket: dict[str, Any]) -> dict[str, Any]:
    """A challenger for /v1/summarize: the same summary as the champion's."""
    return {"words": len(str(ticket["text"]).split()), "lang": ticket["lang"]}


async def echo(payload: Any) -> Any:
    """Answers with its input: whatever the request carried (nested, huge, empty) reaches
    the worker's encoder and, against the champion's output, the comparator."""
    return payload


async def held_until_released(payload: dict[str, Any]) -> dict[str, Any]:
    """Request 0 is answered only once the file named by its ``gate`` exists (the test
    decides when, instead of a fixed sleep racing the pipeline); the others at once."""
    gate = payload.get("gate")
    if int(payload["i"]) == 0 and gate:
        from pathlib import Path

        while not Path(gate).exists():
            await asyncio.sleep(0.05)
    return champion_output(payload)


async def takes_a_second(payload: dict[str, Any]) -> dict[str, Any]:
    """The champion's answer after 1 s: calls are always in flight under steady traffic."""
    await asyncio.sleep(1.0)
    return champion_output(payload)
