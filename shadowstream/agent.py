"""Base class for the batched data-plane agents that run inside the Faust worker."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import mode

log = logging.getLogger(__name__)


class AgentService(mode.Service):
    """A mode.Service (what Faust runs) whose body is a loop of ``step()`` calls.

    An unexpected exception crashes the worker on purpose: every agent commits
    offsets only after its outputs are safe, so a restart resumes exactly, while
    limping on after an unknown error could lose data.
    """

    agent_name = "agent"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.started_at = time.time()
        self.ready = asyncio.Event()

    async def setup(self) -> None:
        """Create clients (called on start)."""

    async def step(self) -> None:
        """One iteration: consume a batch, process it, do periodic work."""
        raise NotImplementedError

    async def teardown(self) -> None:
        """Final commit and close (called on stop, after the loop ended)."""

    def metrics(self) -> dict[str, Any]:
        return {}

    async def on_start(self) -> None:
        await self.setup()

    async def on_started(self) -> None:
        self._task = asyncio.ensure_future(self._main())

    async def _main(self) -> None:
        try:
            while not self._stopping:
                await self.step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s crashed: %s", self.agent_name, exc)
            await self.crash(exc)

    async def on_stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # already logged by _main
                pass
        await self.teardown()
