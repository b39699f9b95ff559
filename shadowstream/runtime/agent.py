"""Base class for the batched data-plane agents that run inside the Faust worker.

Each agent runs its loop on a thread of its own, with its own asyncio event
loop. Faust (mode) still owns the lifecycle - start, stop, crash - from the
main loop. The point is isolation: one agent processing a large batch (the
router joining thousands of events, the sink framing an insert) must not
delay another agent's timers and I/O on a shared loop - above all a
challenger worker's model calls, whose latency is what is being measured.
Threads share the GIL, so the worst-case delay drops from "the longest batch
anywhere in the process" to about one GIL switch interval.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from typing import Any

import mode

log = logging.getLogger(__name__)

# A thread waiting for the GIL waits up to this long before the holder must
# yield: 5 ms by default, too coarse next to the latencies being compared when
# several agents share a process. Each switch costs, though: a process that
# hosts one agent keeps the default.
SHARED_PROCESS_SWITCH_INTERVAL_S = 0.001

# The cyclic GC's default first threshold (700 allocations) makes it run
# thousands of times a second in an agent, and its full collections walk every
# open request and marker the join holds; none of that state forms cycles.
# Measured on the router's decode-join-compare-encode loop: ~10% of its CPU.
AGENT_GC_THRESHOLDS = (50_000, 20, 10)
_gc_tuned = False


def tune_gc_for_agents() -> None:
    """Once per process: freeze what start-up allocated (modules, the Faust app) out of
    the collector's view, and collect young objects far less often. Cycles are still
    collected, just in larger batches."""
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*AGENT_GC_THRESHOLDS)


class AgentService(mode.Service):
    """A mode.Service (what Faust runs) whose body is a loop of ``step()`` calls.

    ``setup()``, every ``step()`` and ``teardown()`` run on the agent's own
    thread and event loop. An unexpected exception crashes the worker on
    purpose: every agent commits offsets only after its outputs are safe, so a
    restart resumes exactly, while limping on after an unknown error could
    lose data.
    """

    agent_name = "agent"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._thread: threading.Thread | None = None
        self._main_loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.started_at = time.time()
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None
        self._crash_task: asyncio.Future[None] | None = None

    async def setup(self) -> None:
        """Create clients (called on the agent's thread before the first step)."""

    async def step(self) -> None:
        """One iteration: consume a batch, process it, do periodic work."""
        raise NotImplementedError

    async def teardown(self) -> None:
        """Final commit and close (called on the agent's thread after the last step)."""

    def metrics(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def share_process() -> None:
        """Call when several agents run in this process: switch threads more often."""
        if sys.getswitchinterval() > SHARED_PROCESS_SWITCH_INTERVAL_S:
            sys.setswitchinterval(SHARED_PROCESS_SWITCH_INTERVAL_S)

    def mark_ready(self) -> None:
        """Callable from any thread (e.g. a Kafka rebalance callback)."""
        loop = self._main_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.ready.set)

    # -- lifecycle (main loop) ------------------------------------------------------------
    async def on_started(self) -> None:
        tune_gc_for_agents()
        self._main_loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"agent-{self.agent_name}", daemon=True
        )
        self._thread.start()

    async def on_stop(self) -> None:
        self._stopping = True
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 60.0)
            if thread.is_alive():
                log.warning("%s did not stop within 60 s", self.agent_name)

    # -- the agent's own thread -----------------------------------------------------------
    def _thread_main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        set_up = False
        try:
            await self.setup()
            set_up = True
            while not self._stopping:
                await self.step()
        except Exception as exc:
            log.exception("%s crashed: %s", self.agent_name, exc)
            self.failure = exc
            self._crash_from_thread(exc)
        finally:
            if set_up:
                try:
                    await self.teardown()
                except Exception:
                    log.exception("%s: teardown failed", self.agent_name)

    def _crash_from_thread(self, exc: BaseException) -> None:
        loop = self._main_loop
        if loop is None or loop.is_closed():
            return

        def crash() -> None:
            self._crash_task = asyncio.ensure_future(self.crash(exc))

        loop.call_soon_threadsafe(crash)
