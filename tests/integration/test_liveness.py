"""Liveness on real processes: stalls past the session timeout, a broker that hangs,
a broker killed and restarted empty, a configuration mistake, a clean shutdown.

Agents are `shadow` subprocesses we start (and only ever signal by their PID); faults
are SIGSTOP/SIGCONT and SIGKILL. Every wait is for a condition, with a generous
timeout; a fault's own duration is a number of session timeouts.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shadowstream.core.config import Settings
from shadowstream.pipeline.app import create_topics
from shadowstream.pipeline.embedded import EmbeddedBroker
from shadowstream.pipeline.processes import AgentProcess, settings_env
from shadowstream.producers import ShadowEmitter
from shadowstream.warehouse.client import open_warehouse
from tests.support.models import champion_output

pytestmark = pytest.mark.slow

SESSION_S = 2.0  # the embedded broker's session timeout (the settings leave it on auto)


def challenger(name: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "callable": f"tests.support.models:{fn}", "concurrency": 200, **extra}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took; fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Traffic:
    """Production traffic through the SDK, ~rate req/s, each id tagged with the phase
    the test was in when it was sent."""

    def __init__(self, settings: Settings, rate: float = 30.0) -> None:
        self.emitter = ShadowEmitter(
            settings.broker_url, service="liveness", topic_prefix=settings.topic_prefix
        )
        self.rate = rate
        self.phase = "before"
        self.sent: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            phase = self.phase
            rid = f"{phase}-{i}"
            payload = {"i": i}
            self.emitter.emit_request(rid, "/predict", payload)
            self.emitter.emit_response(rid, champion_output(payload), 5.0)
            self.sent.setdefault(phase, []).append(rid)
            i += 1
            self._stop.wait(1 / self.rate)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=10)
        assert self.emitter.flush(30) == 0
        stats = self.emitter.stats()
        self.emitter.close()
        assert stats.dropped == 0, stats
        return sum(len(ids) for ids in self.sent.values())


def ready_answering_metrics(process: AgentProcess) -> None:
    """Wait for /readyz 200; /metrics must answer 200 all along (it raised during start-up)."""

    def check() -> bool:
        process.check_running()
        try:
            url = f"http://127.0.0.1:{process.web_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"/metrics answered {exc.code} during start-up") from None
        except OSError:
            return False  # not listening yet
        return process.healthz()

    wait_until(check, 90, f"{process.name} to be ready")


def membership(process: AgentProcess, agent: str) -> tuple[int, dict[str, Any]]:
    status, state = process.health("/readyz")
    return status, (state.get("agents", {}).get(agent) or {}).get("membership") or {}


def stall(process: AgentProcess, agent: str, hold: Callable[[], None]) -> float:
    """SIGSTOP ``process`` until ``hold`` returns, SIGCONT; seconds until it rejoined:
    ready, with a new assignment after losing the old one (or being fenced)."""
    assignments = membership(process, agent)[1]["assignments"]
    process.pause()
    try:
        hold()
    finally:
        process.resume()

    def rejoined() -> bool:
        status, m = membership(process, agent)
        lost = m.get("losses", 0) + m.get("fences", 0)
        return (
            status == 200
            and lost >= 1
            and m["assignments"] > assignments
            and m["fenced"] is None
            and m["partitions"] > 0
        )

    return wait_until(rejoined, 60, f"{agent} to rejoin")


def test_stalled_agents_rejoin_in_the_same_process(make_settings: Any, tmp_path: Path) -> None:
    own_db = f"chdb://{tmp_path / 'sink-chdb'}"
    settings = make_settings(
        clickhouse_url=own_db,
        join_window_seconds=4.0,
        late_retention_seconds=300.0,
        challengers=[challenger("steady", "takes_a_second", timeout_seconds=10)],
    )
    create_topics(settings)
    router = AgentProcess(settings, ["worker", "router"], tmp_path, "router")
    worker = AgentProcess(settings, ["worker", "challenger", "--name", "steady"], tmp_path, "w")
    sink = AgentProcess(settings, ["worker", "sink"], tmp_path, "sink")
    db = settings.clickhouse_database

    def query(sql: str) -> list[tuple[Any, ...]]:
        return open_warehouse(own_db, db).query(sql).rows

    def compared(where: str = "1") -> int:
        sql = f"SELECT count() FROM {db}.comparisons FINAL WHERE is_late = 0 AND ({where})"
        return int(query(sql)[0][0])

    processes = [router, worker, sink]
    traffic = Traffic(settings)
    try:
        for process in processes:
            process.start()
        for process in processes:
            ready_answering_metrics(process)
        traffic.start()
        wait_until(lambda: compared() >= 60, 90, "comparisons before the stalls")
        rejoin: dict[str, float] = {}

        def caught_up() -> None:
            sent = sum(len(ids) for ids in traffic.sent.values())
            wait_until(lambda: compared() >= sent, 120, "the pipeline to catch up")

        # a worker frozen past the session timeout, while its model calls are in flight
        traffic.phase = "pre_stall"
        caught_up()  # every "before" request is compared before the freeze
        traffic.phase = "worker_stall"
        frozen_at = time.monotonic()

        def worker_frozen() -> None:
            wait_until(
                lambda: (
                    compared("outcome = 'challenger_missing'") >= 20
                    and time.monotonic() - frozen_at > 3 * SESSION_S
                ),
                90,
                "joins to close without the frozen worker",
            )
            traffic.phase = "worker_recovering"

        rejoin["worker"] = stall(worker, "challenger:steady", worker_frozen)
        traffic.phase = "after_worker"
        caught_up()
        # the router, then the sink, frozen for three session timeouts each
        for process, agent in ((router, "router"), (sink, "sink")):
            traffic.phase = f"{agent}_stall"

            def frozen(agent: str = agent) -> None:
                time.sleep(3 * SESSION_S)  # the fault's duration
                traffic.phase = f"{agent}_recovering"

            rejoin[agent] = stall(process, agent, frozen)
            traffic.phase = f"after_{agent}"
            caught_up()
        total = traffic.stop()

        wait_until(lambda: compared() >= total, 180, f"all {total} requests compared")
        time.sleep(1)  # one more sink batch: nothing beyond the total
        assert compared() == total
        for process in processes:
            process.check_running()  # nothing exited
        outcomes = dict(
            query(
                f"""SELECT splitByChar('-', request_id)[1] AS phase,
                       groupArray(DISTINCT outcome) FROM {db}.comparisons FINAL
                WHERE is_late = 0 GROUP BY phase"""
            )
        )
        # requests sent before the first stall, and after each agent was back: compared
        # normally (the ones in between may have missed their window)
        for phase in ("before", "after_worker", "after_router", "after_sink"):
            assert outcomes[phase] == ["both_answered"], (phase, outcomes)
        assert "challenger_missing" in outcomes["worker_stall"]
        # the frozen worker's calls answered after their windows closed: late, once each,
        # beside the one comparison that closed the request
        late = query(
            f"""SELECT l.request_id, countIf(c.outcome = 'challenger_missing')
            FROM (SELECT request_id FROM {db}.comparisons FINAL WHERE is_late = 1) AS l
            LEFT JOIN (SELECT request_id, outcome FROM {db}.comparisons FINAL
                       WHERE is_late = 0) AS c ON c.request_id = l.request_id
            GROUP BY l.request_id"""
        )
        assert late, "no answer of the frozen worker arrived after its window"
        assert all(missing == 1 for _, missing in late), late
        print(
            f"\n{total} requests compared once each; rejoined after SIGCONT in "
            + ", ".join(f"{k} {v:.1f}s" for k, v in rejoin.items())
            + f"; {len(late)} late answers recorded once"
        )
    finally:
        if not traffic._stop.is_set():
            traffic._stop.set()
        for process in processes:
            process.stop()


def test_broker_hang_and_empty_restart_nothing_exits(make_settings: Any, tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_file=tmp_path / "broker.log").start()
    own_db = f"chdb://{tmp_path / 'chdb'}"
    settings = make_settings(
        broker_url=broker.url,
        clickhouse_url=own_db,
        challengers=[challenger("same", "same")],
    )
    db = settings.clickhouse_database
    pipeline = AgentProcess(settings, ["run"], tmp_path, "all")

    def compared(prefix: str) -> int:
        sql = (
            f"SELECT count() FROM {db}.comparisons FINAL WHERE is_late = 0 "
            f"AND outcome = 'both_answered' AND startsWith(request_id, '{prefix}-')"
        )
        return int(open_warehouse(own_db, db).query(sql).scalar() or 0)

    def send(prefix: str, n: int = 300) -> None:
        emitter = ShadowEmitter(broker.url, service="liveness", topic_prefix=settings.topic_prefix)
        for i in range(n):
            payload = {"i": i}
            emitter.emit_request(f"{prefix}-{i}", "/predict", payload)
            emitter.emit_response(f"{prefix}-{i}", champion_output(payload), 5.0)
        assert emitter.flush(60) == 0
        assert emitter.stats().dropped == 0
        emitter.close()

    def assigned() -> bool:
        status, state = pipeline.health("/readyz")
        agents = state.get("agents", {}).values()
        return status == 200 and all(
            (a.get("membership") or {}).get("partitions", 0) > 0 for a in agents
        )

    def outage(duration: float) -> int:
        """/readyz must turn non-200 and stay so; /livez stays 200; returns samples taken."""
        wait_until(lambda: pipeline.health("/readyz")[0] == 503, 30, "readyz to report it")
        samples, until = 0, time.monotonic() + duration
        while time.monotonic() < until:
            pipeline.check_running()
            assert pipeline.health("/readyz")[0] == 503
            assert pipeline.health("/livez")[0] == 200
            samples += 1
            time.sleep(0.5)
        return samples

    try:
        pipeline.start()
        pipeline.wait_ready()
        send("before")
        wait_until(lambda: compared("before") == 300, 60, "comparisons before the outage")

        broker.pause()  # hangs: connections open, no answers, data kept
        try:
            hung = outage(4 * SESSION_S)
        finally:
            broker.resume()
        hang_recovery = wait_until(assigned, 90, "recovery after the hang")
        send("after-hang")
        wait_until(lambda: compared("after-hang") == 300, 90, "comparisons after the hang")

        broker.kill()  # and it comes back empty on the same port
        down = outage(6 * SESSION_S)
        broker.start()
        restart_recovery = wait_until(assigned, 120, "recovery after the empty restart")
        send("after-restart")
        wait_until(lambda: compared("after-restart") == 300, 120, "comparisons after restart")
        time.sleep(1)
        assert [compared(p) for p in ("before", "after-hang", "after-restart")] == [300] * 3
        _, state = pipeline.health("/readyz")
        assert state["broker"]["outages"] == 2 and state["broker"]["topics_recreated"] >= 1

        pipeline.stop()
        assert pipeline.proc is not None and pipeline.proc.returncode == 0, pipeline.tail()
        log = pipeline.tail(100_000)
        assert "Traceback" not in log and "Event loop is closed" not in log, log[-3000:]
        print(
            f"\nhang: {hung} samples of /readyz 503 + /livez 200, ready {hang_recovery:.1f}s "
            f"after SIGCONT; killed: {down} samples, ready {restart_recovery:.1f}s after the "
            "empty restart; 900 requests compared once each; clean exit 0"
        )
    finally:
        pipeline.stop()
        broker.stop()


def test_a_challenger_that_does_not_import_fails_in_one_line(make_settings: Any) -> None:
    settings = make_settings(challengers=[{"name": "broken", "callable": "no_such_mod_x:model"}])
    result = subprocess.run(
        [sys.executable, "-m", "shadowstream.cli", "worker", "challenger", "--name", "broken"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result  # a configuration mistake (usage)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "no_such_mod_x" in lines[0] and "configuration" in lines[0]
    assert "restart resumes" not in result.stderr and "Traceback" not in result.stderr
