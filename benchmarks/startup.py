"""Where start-up time goes, and how soon a killed agent serves again.

    ./dev bench startup.py                 # 2 rounds
    ./dev bench startup.py --rounds 5 --partitions 8

Every scenario runs twice in each round, side by side: with the session timeout on
auto (2 s on the embedded broker) and, as the baseline, with 10 s (the default on
Apache Kafka, and what a restart cost before). Scenarios:

* cold:   ``shadow run`` on a fresh chDB directory, spawn -> /readyz 200, with the
          milestones each process reports (imports and config, broker answered, Faust
          started, per agent: subscribed, ClickHouse opened, migrated, first assignment);
* warm:   ``shadow run`` again after a clean stop (the tables exist);
* kill:   that process killed with SIGKILL and started again: -> ready, and -> the
          first comparison it emits (traffic never stops);
* router: a router process killed with SIGKILL while a worker and a sink run in
          processes of their own; the same two figures.

Once per run, the router scenario also runs with static group membership
(``group.instance.id``) on the embedded broker, to show what Tansu 0.6.0 does with it.
Broker start and topic creation are timed on their own. Medians are printed; the
machine is shared, so compare columns of the same run, not runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from shadowstream.core.config import Settings, load_settings
from shadowstream.pipeline.app import create_topics
from shadowstream.pipeline.embedded import EmbeddedBroker
from shadowstream.pipeline.processes import AgentProcess
from shadowstream.producers import ShadowEmitter

CHALLENGERS = [
    {"name": n, "callable": "benchmarks.noop_models:echo_async", "concurrency": 64}
    for n in ("a", "b")
]
MILESTONES = ["created", "broker_answered", "faust_started"]
AGENT_MILESTONES = ["subscribed", "warehouse_opened", "migrated", "setup_done", "assigned"]


class Comparisons:
    """Watches the comparisons topic: when was the first one emitted after a moment?"""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.broker_url.removeprefix("kafka://"),
                "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                "enable.auto.commit": False,
            }
        )
        topic = f"{settings.topic_prefix}.comparisons"
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_END) for p in range(settings.partitions)]
        )
        self.seen: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(1000, 0.1):
                if msg.error() is None:  # when the router produced it, not when read here
                    self.seen.append(msg.timestamp()[1] / 1000)

    def first_after(self, moment: float, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [t for t in self.seen if t > moment]
            if later:
                return min(later) - moment
            time.sleep(0.05)
        return float("nan")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()


class Traffic:
    """A request and the champion's answer every 50 ms, until stopped."""

    def __init__(self, settings: Settings) -> None:
        self._emitter = ShadowEmitter(
            settings.broker_url, service="bench", topic_prefix=settings.topic_prefix
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(0.05):
            rid = f"s-{uuid.uuid4().hex[:8]}-{i}"
            self._emitter.emit_request(rid, "/v1/classify", {"i": i})
            self._emitter.emit_response(rid, {"i": i}, 5.0)
            i += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._emitter.close(5)


def wait(predicate: Callable[[], bool], timeout: float = 120.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    return float("nan")


def start_timed(process: AgentProcess) -> dict[str, float]:
    """Spawn and wait: seconds from spawn to the first HTTP answer and to /readyz 200,
    plus the milestones the process reports (seconds since spawn)."""
    spawned = time.time()
    process.start()
    answered = wait(lambda: process.health("/livez")[0] != 0)
    ready = answered + wait(lambda: process.health("/readyz")[0] == 200)
    out = {"http": answered, "ready": ready}
    _, state = process.health("/readyz")
    startup = state.get("startup") or {}
    for name in MILESTONES:
        if name in startup:
            out[name] = startup[name] - spawned
    for agent, milestones in (startup.get("agents") or {}).items():
        for name in AGENT_MILESTONES:
            if name in milestones:
                out[f"{agent}.{name}"] = milestones[name] - spawned
    return out


@contextmanager
def environment(partitions: int, session_ms: int | None) -> Iterator[tuple[Settings, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="shadow-startup-"))
    broker = EmbeddedBroker(log_file=workdir / "broker.log").start()
    settings = load_settings(
        None,
        broker_url=broker.url,
        clickhouse_url=f"chdb://{workdir / 'chdb'}",
        topic_prefix=f"s{uuid.uuid4().hex[:8]}",
        partitions=partitions,
        kafka_session_timeout_ms=session_ms,
        challengers=CHALLENGERS,
    )
    create_topics(settings)
    try:
        yield settings, workdir
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def all_in_one(partitions: int, session_ms: int | None) -> dict[str, float]:
    with environment(partitions, session_ms) as (settings, workdir):
        run = AgentProcess(settings, ["run"], workdir, "run")
        out = {f"cold {k}": v for k, v in start_timed(run).items()}
        run.stop()
        out["warm ready"] = start_timed(run)["ready"]
        comparisons, traffic = Comparisons(settings), Traffic(settings)
        try:
            wait(lambda: bool(comparisons.seen))
            run.kill9()
            restarted = time.time()
            out["kill ready"] = start_timed(run)["ready"]
            out["kill first comparison"] = comparisons.first_after(restarted)
        finally:
            traffic.close()
            comparisons.close()
            run.stop()
    return out


def killed_router(
    partitions: int, session_ms: int | None, static: bool = False
) -> dict[str, float]:
    with environment(partitions, session_ms) as (settings, workdir):
        router_settings = settings
        if static:  # static membership for the router's consumer group
            options = {"group.instance.id": "bench-router"}
            router_settings = settings.model_copy(update={"kafka_options": options})
        router = AgentProcess(router_settings, ["worker", "router"], workdir, "router")
        others = [
            AgentProcess(
                settings, ["worker", "challenger", "--name", "a", "--name", "b"], workdir, "w"
            ),
            AgentProcess(settings, ["worker", "sink"], workdir, "sink"),
        ]
        for process in [router, *others]:
            process.start()
        for process in [router, *others]:
            process.wait_ready(180)
        comparisons, traffic = Comparisons(settings), Traffic(settings)
        try:
            wait(lambda: bool(comparisons.seen))
            router.kill9()
            restarted = time.time()
            timed = start_timed(router)
            return {
                "router ready": timed["ready"],
                "router assigned": timed.get("router.assigned", float("nan")),
                "router first comparison": comparisons.first_after(restarted),
            }
        finally:
            traffic.close()
            comparisons.close()
            for process in [router, *others]:
                process.stop()


def broker_and_topics(partitions: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="shadow-startup-"))
    started = time.monotonic()
    broker = EmbeddedBroker(log_file=workdir / "broker.log").start()
    out = {"broker start": time.monotonic() - started}
    try:
        settings = load_settings(
            None, broker_url=broker.url, partitions=partitions, challengers=CHALLENGERS
        )
        started = time.monotonic()
        create_topics(settings)
        out["topic creation"] = time.monotonic() - started
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def median(values: list[float]) -> float:
    good = [v for v in values if v == v]  # drop NaN (timed out)
    return statistics.median(good) if good else float("nan")


def print_table(columns: dict[str, list[dict[str, float]]]) -> None:
    rows: list[str] = []
    for results in columns.values():
        for result in results:
            rows += [k for k in result if k not in rows]
    names = list(columns)
    print(f"\n{'seconds (median)':<40}" + "".join(f"{n:>22}" for n in names))
    for row in rows:
        cells = [median([r[row] for r in columns[n] if row in r]) for n in names]
        print(f"{row:<40}" + "".join(f"{c:>22.2f}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    columns: dict[str, list[dict[str, Any]]] = {"auto (2 s embedded)": [], "10 s (baseline)": []}
    base: list[dict[str, float]] = []
    for round_no in range(args.rounds):
        base.append(broker_and_topics(args.partitions))
        for name, session_ms in (("auto (2 s embedded)", None), ("10 s (baseline)", 10_000)):
            result = all_in_one(args.partitions, session_ms)
            result.update(killed_router(args.partitions, session_ms))
            columns[name].append(result)
            print(
                f"round {round_no + 1}, {name}: ready {result['cold ready']:.2f}s cold, "
                f"router back {result['router ready']:.2f}s",
                flush=True,
            )
    static = killed_router(args.partitions, None, static=True)
    print_table({"broker": base})
    print_table(columns)
    print_table({"auto, static membership": [static]})


if __name__ == "__main__":
    main()
