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
import contextlib
import gc
import logging
import sys
import threading
import time
from typing import Any

import mode

from shadowstream.core.errors import (
    BrokerUnavailableError,
    ChallengerError,
    ConfigError,
    GroupMembershipLostError,
)
from shadowstream.runtime.consumer import BatchConsumer
from shadowstream.runtime.health import AgentHealth, RateLimitedLog
from shadowstream.runtime.kafka_io import UndeliveredOutputsError

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
    thread and event loop. The broker and the group never end the loop: a
    lost membership (or outputs the broker refused) drops the uncommitted
    work (``drop_uncommitted``) and rejoins; an unreachable broker is waited
    for. Any other exception crashes the worker on purpose: every agent
    commits offsets only after its outputs are safe, so a restart resumes
    exactly, while limping on after an unknown error could lose data.
    """

    agent_name = "agent"
    # health: no finished step for this long while the broker answers means stuck
    stall_timeout_s = 60.0
    # health: no partition for this long means the group is not forming
    rebalance_grace_s = 30.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._thread: threading.Thread | None = None
        self._main_loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.started_at = time.time()
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None
        self._crash_task: asyncio.Future[None] | None = None
        self.phase = "created"  # starting, running, stopping, stopped, failed
        self.last_beat = time.monotonic()
        self.timings: dict[str, float] = {}  # start-up milestones (epoch seconds)
        self._unavailable = RateLimitedLog(log, 30.0)

    async def setup(self) -> None:
        """Create clients (called on the agent's thread before the first step).
        Subscribe first: the group join then runs while the rest is set up."""

    async def step(self) -> None:
        """One iteration: consume a batch, process it, do periodic work."""
        raise NotImplementedError

    async def teardown(self) -> None:
        """Final commit and close (called on the agent's thread after the last step)."""

    def drop_uncommitted(self) -> None:
        """Forget everything consumed since the last commit (this member was fenced:
        the partitions' next owner re-reads it from the committed offsets)."""

    def on_topics_recreated(self) -> None:
        """The broker lost its data and the topics were re-created (called from the broker
        watch's thread): re-read anything followed by position, not by group."""

    def not_ready_reasons(self) -> list[str]:
        """Agent-specific reasons it cannot do its job right now (e.g. the sink cannot store)."""
        return []

    def metrics(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def share_process() -> None:
        """Call when several agents run in this process: switch threads more often."""
        if sys.getswitchinterval() > SHARED_PROCESS_SWITCH_INTERVAL_S:
            sys.setswitchinterval(SHARED_PROCESS_SWITCH_INTERVAL_S)

    def mark_ready(self) -> None:
        """Callable from any thread (e.g. a Kafka rebalance callback)."""
        self.timings.setdefault("assigned", time.time())
        loop = self._main_loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: shutting down
                loop.call_soon_threadsafe(self.ready.set)

    def group_consumer(self) -> BatchConsumer | None:
        """The agent's group consumer, once setup() created it (as ``self.consumer``)."""
        consumer = getattr(self, "consumer", None)
        return consumer if isinstance(consumer, BatchConsumer) else None

    def beat(self) -> None:
        """The agent made progress (or is alive and waiting for the broker)."""
        self.last_beat = time.monotonic()

    def mark(self, milestone: str) -> None:
        """Record a start-up milestone (reported in /healthz, measured by benchmarks)."""
        self.timings.setdefault(milestone, time.time())

    # -- health (read from the web thread) -------------------------------------------
    def health(self) -> AgentHealth:
        reasons: list[str] = []
        crashed = self.phase == "failed"
        if crashed:
            reasons.append(f"crashed: {self.failure}")
        elif self.phase != "running":
            reasons.append(self.phase)
        thread = self._thread
        if self.phase == "running" and (thread is None or not thread.is_alive()):
            crashed = True
            reasons.append("its thread ended")
        consumer = self.group_consumer()
        if consumer is not None and self.phase == "running":
            membership = consumer.membership
            waiting = membership.unassigned_for()
            if not membership.counts["assignments"]:
                reasons.append(f"joining its consumer group ({waiting:.0f}s)")
            elif waiting > self.rebalance_grace_s:
                reasons.append(
                    f"no partitions for {waiting:.0f}s (rebalance not finishing, "
                    "or more members than partitions)"
                )
        reasons += self.not_ready_reasons() if self.phase == "running" else []
        return AgentHealth(
            name=self.agent_name,
            phase=self.phase,
            crashed=crashed,
            stalled_s=time.monotonic() - self.last_beat if self.phase == "running" else 0.0,
            stall_timeout_s=self.stall_timeout_s,
            reasons=reasons,
            membership=consumer.membership.snapshot() if consumer is not None else None,
        )

    # -- lifecycle (main loop) ------------------------------------------------------------
    async def on_started(self) -> None:
        tune_gc_for_agents()
        self._main_loop = asyncio.get_running_loop()
        self.phase = "starting"
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
            self.mark("setup_started")
            await self.setup()
            set_up = True
            self.mark("setup_done")
            self.phase = "running"
            self.beat()
            while not self._stopping:
                await self._step_once()
                self.beat()
        except Exception as exc:
            self._fail(exc)
        finally:
            if set_up:
                self.phase = "stopping" if self.phase != "failed" else self.phase
                try:
                    await self.teardown()
                except Exception:
                    log.exception("%s: teardown failed", self.agent_name)
            if self.phase != "failed":
                self.phase = "stopped"

    async def _step_once(self) -> None:
        """One step; what the broker or the group throws at it is handled here."""
        try:
            await self.step()
        except GroupMembershipLostError as exc:
            self._fence(str(exc), rejoin_now=False)
        except UndeliveredOutputsError as exc:
            self._fence(f"outputs lost ({exc})", rejoin_now=True)
        except BrokerUnavailableError as exc:
            self._unavailable.warning(
                "%s: waiting for the broker (%s); nothing is lost", self.agent_name, exc
            )
            await asyncio.sleep(0.5)

    def _fence(self, reason: str, *, rejoin_now: bool) -> None:
        self.drop_uncommitted()
        consumer = self.group_consumer()
        if consumer is not None:
            consumer.fence(reason, rejoin_now=rejoin_now)

    def _fail(self, exc: Exception) -> None:
        self.failure = exc
        self.phase = "failed"
        if is_config_error(exc):
            log.error("%s cannot run: %s", self.agent_name, exc)
        else:
            log.exception("%s crashed: %s", self.agent_name, exc)
        self._crash_from_thread(exc)

    def _crash_from_thread(self, exc: BaseException) -> None:
        loop = self._main_loop
        if loop is None or loop.is_closed():
            return

        def crash() -> None:
            self._crash_task = asyncio.ensure_future(self.crash(exc))

        with contextlib.suppress(RuntimeError):  # the main loop closed meanwhile
            loop.call_soon_threadsafe(crash)


def is_config_error(exc: BaseException) -> bool:
    """A failure that a restart cannot fix: the configuration (or the code it names) is wrong."""
    return isinstance(exc, ConfigError | ChallengerError)
