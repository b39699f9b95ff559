"""``/livez``, ``/readyz`` and ``/healthz``: what a supervisor and a load balancer ask.

* ``/livez`` (liveness): 503 only when restarting the process would help: an
  agent crashed or its thread ended, or an agent made no progress for
  ``health_stall_seconds`` while the broker answered. An unreachable broker
  or ClickHouse never fails liveness: a restart does not bring them back.
* ``/readyz`` (readiness): 200 only while every agent does its job: the
  broker answers and has the pipeline's topics, every agent holds partitions
  (a rebalance may take up to ``rebalance_grace_s`` without flipping it), and
  the sink can store. It is 503 during start-up until the first assignment.
* ``/healthz``: the same as ``/readyz`` (what it always meant: "ready").

Every answer is JSON with the reasons, the broker's state, each agent's state
and the start-up milestones (see docs/health.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from faust.web import Request, Response, View

from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.broker_watch import BrokerWatch


class ProcessHealth:
    def __init__(self, services: Sequence[AgentService], watch: BrokerWatch | None) -> None:
        self.services = list(services)
        self.watch = watch
        self.milestones: dict[str, float] = {"created": time.time()}

    def mark(self, milestone: str) -> None:
        self.milestones.setdefault(milestone, time.time())

    def check(self) -> dict[str, Any]:
        agents = {s.agent_name: s.health() for s in self.services}
        broker = self.watch.problems() if self.watch is not None else []
        reachable = self.watch is None or self.watch.reachable is not False
        reasons = list(broker)
        not_live = []
        for name, health in agents.items():
            reasons += [f"{name}: {reason}" for reason in health.reasons]
            if health.crashed:
                not_live.append(f"{name}: {', '.join(health.reasons) or 'crashed'}")
            elif health.stalled:
                stalled = f"{name}: no progress for {health.stalled_s:.0f}s"
                reasons.append(stalled)
                if reachable:  # waiting for a broker that is away is not a fault
                    not_live.append(stalled)
        live = not not_live
        return {
            "live": live,
            "ready": live and not reasons,
            "reasons": not_live + [r for r in reasons if r not in not_live],
            "broker": self.watch.status() if self.watch is not None else None,
            "agents": {name: health.as_dict() for name, health in agents.items()},
            "startup": self.startup(),
        }

    def startup(self) -> dict[str, Any]:
        """Start-up milestones as epoch seconds (benchmarks/startup.py reads them)."""
        out: dict[str, Any] = dict(self.milestones)
        if self.watch is not None and self.watch.first_ok_at is not None:
            out["broker_answered"] = self.watch.first_ok_at
        out["agents"] = {s.agent_name: dict(s.timings) for s in self.services}
        return out


def add_health_views(app: Any, health: ProcessHealth) -> None:
    class Livez(View):
        async def get(self, request: Request) -> Response:
            state = health.check()
            return self.json(state, status=200 if state["live"] else 503)

    class Readyz(View):
        async def get(self, request: Request) -> Response:
            state = health.check()
            return self.json(state, status=200 if state["ready"] else 503)

    app.page("/livez")(Livez)
    app.page("/readyz")(Readyz)
    app.page("/healthz")(Readyz)
