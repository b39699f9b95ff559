"""Calling a challenger's model: one deadline over the retries, and small batches of a
synchronous model run back to back on one pool thread.

Each call ends in an :data:`Outcome`: (answer, status, error, latency in ms) with
status ``ok``, ``error`` or ``timeout``; nothing raises.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from shadowstream.runtime.threads import PoolSaturatedError
from shadowstream.schemas.records import RequestEvent, Status
from shadowstream.stream_agents.challengers.base import (
    ChallengeContext,
    ChallengerAdapter,
    ModelAnswer,
)
from shadowstream.stream_agents.challengers.callable_adapter import BatchProgress

Outcome = tuple[ModelAnswer | None, Status, str | None, float]


@dataclass(slots=True)
class PendingCall:
    """A request on its way to the model, and where it came from (for its offset)."""

    request: RequestEvent
    topic: str
    partition: int
    offset: int
    is_batch: bool
    context: ChallengeContext
    epoch: int  # the offset tracker's epoch for the partition when the call started


async def invoke(
    adapter: ChallengerAdapter,
    payload: Any,
    context: ChallengeContext,
    timeout_s: float,
    retries: int,
) -> Outcome:
    """The model's answer within ``timeout_s`` over at most ``1 + retries`` attempts."""
    started = time.perf_counter()
    deadline = started + timeout_s
    error: str | None = None
    for _ in range(1 + retries):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(remaining):  # no extra task, unlike wait_for
                answer = await adapter.invoke(payload, context)
            return answer, "ok", None, (time.perf_counter() - started) * 1000
        except TimeoutError:
            return (
                None,
                "timeout",
                f"no answer within {timeout_s}s",
                (time.perf_counter() - started) * 1000,
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
    return None, "error", error, (time.perf_counter() - started) * 1000


async def call_batch(
    adapter: Any, items: list[tuple[Any, ChallengeContext]], timeout_s: float
) -> list[Outcome]:
    """A synchronous model's answers to ``items``, in order, from one pool thread
    (``adapter.call_batch``); a call that hangs past ``timeout_s`` gives up on it and the
    rest of the batch."""
    progress = BatchProgress(started=time.perf_counter())
    check_every = min(max(timeout_s / 4, 0.005), 0.25)
    try:
        future = adapter.call_batch(items, progress)
        while not future.done():
            await asyncio.wait({future}, timeout=check_every)
            if not future.done() and time.perf_counter() - progress.started > timeout_s:
                break  # the current call hangs: give up on it and the rest of the batch
    except PoolSaturatedError as exc:
        # every thread is stuck in a call that never returned: no answer in time
        return [(None, "timeout", str(exc)[:2000], 0.0)] * len(items)
    except Exception as exc:
        return [(None, "error", f"{type(exc).__name__}: {exc}"[:2000], 0.0)] * len(items)
    outcomes: list[Outcome] = []
    for answer, failure, latency_ms in list(progress.results)[: len(items)]:
        if failure is not None:
            error = f"{type(failure).__name__}: {failure}"[:2000]
            outcomes.append((None, "error", error, latency_ms))
        elif latency_ms > timeout_s * 1000:
            outcomes.append((None, "timeout", f"no answer within {timeout_s}s", latency_ms))
        else:
            outcomes.append((answer, "ok", None, latency_ms))
    missing = len(items) - len(outcomes)
    outcomes += [(None, "timeout", f"no answer within {timeout_s}s", timeout_s * 1000)] * missing
    return outcomes
