"""A challenger that is a Python callable named ``module:function``.

Async callables run on the event loop; sync ones on a thread pool sized to the
challenger's concurrency. The callable takes the input payload and, if it has a
second parameter, a :class:`ChallengeContext`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from shadowstream.errors import ChallengerError
from shadowstream.threads import DaemonThreadPool
from stream_agents.challengers.base import ChallengeContext, ModelAnswer


def load_callable(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ChallengerError(f"cannot import challenger module {module_name!r}: {exc}") from None
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
        result = await loop.run_in_executor(self._executor, self._fn, *args)
        if inspect.isawaitable(result):  # a plain function that hands back a coroutine
            result = await result
        return as_answer(result)

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
