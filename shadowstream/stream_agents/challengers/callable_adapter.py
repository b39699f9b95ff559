"""A challenger that is a Python callable named ``module:function``.

Async callables run on the event loop; sync ones on a thread pool sized to the
challenger's concurrency. The callable takes the input payload and, if it has a
second parameter, a :class:`ChallengeContext`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shadowstream.core.errors import ChallengerError
from shadowstream.runtime.threads import DaemonThreadPool
from shadowstream.stream_agents.challengers.base import ChallengeContext, ModelAnswer


def load_callable(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ChallengerError(
            f"cannot import challenger module {module_name!r}: {exc} "
            f"(`shadow` looks in the working directory {os.getcwd()} first, then PYTHONPATH)"
        ) from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ChallengerError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(target):
        raise ChallengerError(f"challenger {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def _wants_context(fn: Callable[..., Any]) -> bool:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


@dataclass
class BatchProgress:
    """Shared with the pool thread running a batch: results so far, current call's start."""

    started: float
    results: list[tuple[ModelAnswer | None, BaseException | None, float]] = field(
        default_factory=list
    )


def as_answer(result: Any) -> ModelAnswer:
    return result if isinstance(result, ModelAnswer) else ModelAnswer(output=result)


class CallableAdapter:
    def __init__(self, name: str, path: str, concurrency: int = 8) -> None:
        self.name = name
        self.path = path
        self._fn = load_callable(path)
        self._is_async = inspect.iscoroutinefunction(self._fn) or inspect.iscoroutinefunction(
            getattr(self._fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._with_context = _wants_context(self._fn)
        self._executor: DaemonThreadPool | None = None
        if not self._is_async:
            self._executor = DaemonThreadPool(
                max_workers=concurrency, thread_name_prefix=f"challenger-{name}"
            )

    async def invoke(self, payload: Any, context: ChallengeContext) -> ModelAnswer:
        args = (payload, context) if self._with_context else (payload,)
        if self._is_async:
            return as_answer(await self._fn(*args))
        loop = asyncio.get_running_loop()
        # in the caller's context: a span current here is current in the thread too
        call = functools.partial(contextvars.copy_context().run, self._fn, *args)
        result = await loop.run_in_executor(self._executor, call)
        if inspect.isawaitable(result):  # a plain function that hands back a coroutine
            result = await result
        return as_answer(result)

    @property
    def runs_in_threads(self) -> bool:
        """A sync callable: the worker may hand it requests in small batches (call_batch)."""
        return not self._is_async

    def call_batch(self, items: list[tuple[Any, ChallengeContext]], progress: BatchProgress) -> Any:
        """Call a sync challenger for several requests in one trip to a pool thread.

        Each call is timed on its own, inside the thread, so neither the event
        loop nor the other calls of the batch count towards its latency. One
        thread handoff per batch instead of per request is what lets a cheap
        model keep up with tens of thousands of requests per second.
        Returns an asyncio future; ``progress`` shows the results so far and when
        the current call started, so the caller can give up on a call that hangs
        without waiting for the rest of the batch.
        """
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._run_batch, items, progress)

    def _run_batch(
        self, items: list[tuple[Any, ChallengeContext]], progress: BatchProgress
    ) -> None:
        fn, with_context = self._fn, self._with_context
        clock = time.perf_counter
        results = progress.results
        for payload, context in items:
            progress.started = started = clock()
            try:
                result = fn(payload, context) if with_context else fn(payload)
                results.append((as_answer(result), None, (clock() - started) * 1000))
            except Exception as exc:
                results.append((None, exc, (clock() - started) * 1000))

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
