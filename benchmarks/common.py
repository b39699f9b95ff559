"""Shared plumbing for the benchmarks: an embedded stack, agent processes, load, CPU."""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Producer

from shadowstream.core.config import Settings, load_settings
from shadowstream.pipeline.app import create_topics
from shadowstream.pipeline.embedded import EmbeddedBroker
from shadowstream.pipeline.processes import AgentProcess
from shadowstream.schemas import REQUEST, RESPONSE
from shadowstream.warehouse.client import Warehouse, chdb_path
from shadowstream.warehouse.owner import RemoteWarehouse, live_owner

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"


@dataclass
class Stack:
    broker: EmbeddedBroker
    settings: Settings
    workdir: Path
    processes: list[AgentProcess] = field(default_factory=list)

    def spawn(self, args: list[str], name: str) -> AgentProcess:
        proc = AgentProcess(self.settings, args, self.workdir, name).start()
        self.processes.append(proc)
        return proc

    def warehouse(self) -> Warehouse:
        """The sink process owns chDB: always go through it (never open the directory here,
        which would lock the sink out)."""
        path = chdb_path(self.settings.clickhouse_url)
        assert path is not None
        owner = live_owner(path)
        if owner is None:
            raise RuntimeError("the sink is not serving its chDB directory (yet)")
        return RemoteWarehouse(
            self.settings.clickhouse_url, self.settings.clickhouse_database, owner
        )

    def comparisons(self) -> int:
        try:
            wh = self.warehouse()
            return int(wh.query(f"SELECT count() FROM {wh.database}.comparisons").scalar() or 0)
        except Exception:
            return -1

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()
        self.processes.clear()


@contextmanager
def stack(
    challengers: list[dict[str, Any]], partitions: int = 8, **overrides: Any
) -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    broker = EmbeddedBroker(log_file=workdir / "broker.log").start()
    try:
        settings = load_settings(
            None,
            broker_url=broker.url,
            clickhouse_url=f"chdb://{workdir / 'chdb'}",
            topic_prefix=f"b{uuid.uuid4().hex[:8]}",
            partitions=partitions,
            kafka_session_timeout_ms=6000,
            challengers=challengers,
            **overrides,
        )
        create_topics(settings)
        s = Stack(broker, settings, workdir)
        try:
            yield s
        finally:
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # kept (with the logs) if the run failed
    finally:
        broker.stop()


def make_events(n: int, prefix: str = "r") -> Iterator[tuple[bytes, bytes, bytes]]:
    """(key, request, champion response) for n requests, ~300-byte payloads."""
    payload = json.dumps({"text": "where is my refund " * 12, "customer": 42})
    for i in range(n):
        rid = f"{prefix}-{i:09d}"
        now = time.time_ns() // 1000
        yield (
            rid.encode(),
            REQUEST.encode(
                {
                    "request_id": rid,
                    "timestamp_us": now,
                    "service": "bench",
                    "endpoint": "/v1/classify",
                    "champion_model": "champion",
                    "payload": payload,
                    "attributes": {"language": "en", "tier": "pro"},
                    "experiment_id": "live",
                }
            ),
            RESPONSE.encode(
                {
                    "request_id": rid,
                    "timestamp_us": now,
                    "role": "champion",
                    "challenger": "",
                    "model": "champion",
                    "output": payload,
                    "latency_ms": 5.0,
                    "status": "ok",
                    "error": None,
                    "usage": {"tokens_in": 30, "tokens_out": 12, "tool_calls": None, "cost": None},
                    "tool_trace": None,
                    "experiment_id": "live",
                }
            ),
        )


def produce(settings: Settings, n: int, rate: float | None = None, prefix: str = "r") -> float:
    """Produce n requests + champion responses (at `rate` req/s, or flat out); returns seconds."""
    producer = Producer(
        {
            "bootstrap.servers": settings.broker_url.removeprefix("kafka://"),
            "partitioner": "murmur2_random",
            "linger.ms": 50,  # as the SDK
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    requests, responses = f"{settings.topic_prefix}.requests", f"{settings.topic_prefix}.responses"
    start = time.perf_counter()
    for i, (key, request, response) in enumerate(make_events(n, prefix)):
        for topic, value in ((requests, request), (responses, response)):
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.01)
        if rate is not None and i % 100 == 99:
            ahead = (i + 1) / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - start


class CpuMeter:
    """CPU seconds used by a set of processes between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start_times: dict[str, float] = {}
        self.wall = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            total = t.user + t.system
            for child in proc.children(recursive=True):
                ct = child.cpu_times()
                total += ct.user + ct.system
            return float(total)
        except psutil.Error:
            return 0.0

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.start_times = {name: self._cpu(p) for name, p in self.procs.items()}

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        return {
            name: (self._cpu(p) - self.start_times[name]) / wall * 100
            for name, p in self.procs.items()
        }


def rss_mb(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 1e6
    except psutil.Error:
        return 0.0


def rate_over(samples: list[tuple[float, int]], total: int) -> float:
    """Steady-state rate: from the first sample at >= 10% of the total landed to the first at
    >= 90%, using the counts actually seen at those samples (inserts land in steps)."""
    lo = next(((t, c) for t, c in samples if c >= total * 0.1), None)
    hi = next(((t, c) for t, c in samples if c >= total * 0.9), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


@dataclass
class Timeline:
    """One drain of a backlog, from spawning the processes to the last comparison landing.

    ``ready_s``: spawn -> every process ready (None when the process does not say);
    ``first_s``: spawn -> the first comparison queryable; ``p90_s`` / ``done_s``: spawn ->
    90% / 100% landed (None if never). ``steady_rate`` is the 10%-90% window (rate_over);
    ``whole_rate`` is everything that landed over spawn -> last landing, start-up included.
    """

    total: int
    landed: int
    ready_s: float | None
    first_s: float | None
    p90_s: float | None
    done_s: float | None
    steady_rate: float
    whole_rate: float

    @property
    def drain_s(self) -> float | None:
        """90% -> 100% landed: the tail of the drain."""
        if self.done_s is None or self.p90_s is None:
            return None
        return self.done_s - self.p90_s


def timeline(
    samples: list[tuple[float, int]], total: int, spawned: float, ready: float | None = None
) -> Timeline:
    """Read a drain's milestones off (monotonic time, landed) samples."""

    def first_at(fraction: float) -> float | None:
        hit = next((t for t, c in samples if c >= total * fraction and c > 0), None)
        return None if hit is None else hit - spawned

    landed = max((c for _, c in samples), default=0)
    last = next((t for t, c in samples if c >= landed), None) if landed else None
    whole = landed / (last - spawned) if last is not None and last > spawned else 0.0
    return Timeline(
        total=total,
        landed=landed,
        ready_s=None if ready is None else ready - spawned,
        first_s=first_at(1e-12),
        p90_s=first_at(0.9),
        done_s=first_at(1.0),
        steady_rate=rate_over(samples, total),
        whole_rate=whole,
    )


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def quantiles_counting_missing(
    landed_quantile: Any, landed: int, expected: int, levels: tuple[float, ...]
) -> list[float | None]:
    """Quantiles over every expected comparison, those that never landed counted as infinitely
    late: the q-quantile of all ``expected`` is the landed rows' quantile at q * expected /
    landed, or None ("not landed") when q * expected > landed. ``landed_quantile(levels)``
    returns the landed rows' quantiles at the given levels."""
    if landed == 0:
        return [None for _ in levels]
    inner = [min(q * expected / landed, 1.0) for q in levels]
    values = landed_quantile(inner)
    return [
        None if q * expected > landed else float(v) for q, v in zip(levels, values, strict=True)
    ]


NAIVE_CODECS = ("fastavro", "python", "c")


def run_naive(
    broker: str,
    prefix: str,
    challengers: list[str],
    partitions: int,
    workdir: Path,
    codec: str = "fastavro",
    worker: int = 0,
) -> subprocess.Popen[bytes]:
    """One worker process of the naive Faust app. Several share the consumer group (Faust
    assigns the co-partitioned requests/responses topics and the join table's partitions
    together), each with its own chDB directory (chDB: one engine per directory)."""
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "naive_faust.py"),
            "--broker",
            broker,
            "--prefix",
            prefix,
            "--challengers",
            ",".join(challengers),
            "--chdb",
            str(workdir / f"naive-chdb-{worker}"),
            "--partitions",
            str(partitions),
            "--codec",
            codec,
        ],
        stdout=subprocess.PIPE,
        stderr=open(workdir / f"naive-{worker}.log", "wb"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


class NaiveWorkers:
    """The naive app's worker processes and the comparisons they report stored."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs
        self.stored = [0] * len(procs)
        self._buffers = [b""] * len(procs)
        for proc in procs:
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)

    @classmethod
    def spawn(
        cls, stack: Stack, challengers: list[str], partitions: int, codec: str, count: int
    ) -> NaiveWorkers:
        """``count`` worker processes of the naive app in one group, on this stack's broker."""
        bootstrap = stack.settings.broker_url.removeprefix("kafka://")
        prefix = stack.settings.topic_prefix
        return cls(
            [
                run_naive(bootstrap, prefix, challengers, partitions, stack.workdir, codec, i)
                for i in range(count)
            ]
        )

    def poll(self) -> int:
        """Read what each worker printed; the comparisons stored by all of them."""
        for i, proc in enumerate(self.procs):
            assert proc.stdout is not None
            self._buffers[i] += proc.stdout.read() or b""
            *lines, self._buffers[i] = self._buffers[i].split(b"\n")
            for line in lines:
                if line.startswith(b"{"):
                    self.stored[i] = json.loads(line)["stored"]
        return sum(self.stored)

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)

    def pids(self) -> dict[str, int]:
        return {f"naive{i + 1}": proc.pid for i, proc in enumerate(self.procs)}

    def stop(self) -> None:
        for proc in self.procs:  # only the processes this benchmark started
            proc.terminate()
        for proc in self.procs:
            proc.wait(30)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000)[min(int(q * 1000), 999) - 1]


def chdb_rows(path: Path, database: str, sql: str) -> list[list[Any]]:
    """Rows of a query on a chDB directory, run in a child process: this process may already
    hold a chDB engine (one per process), and the naive workers each have a directory."""
    code = (
        "import json, sys\n"
        "from shadowstream.warehouse.client import connect\n"
        "wh = connect(sys.argv[1], sys.argv[2])\n"
        "print(json.dumps(wh.query(sys.argv[3]).rows, default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, f"chdb://{path}", database, sql],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"query on {path} failed: {done.stderr[-1000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def exact_quantiles_counting_missing(
    values: list[float], expected: int, levels: tuple[float, ...]
) -> list[float | None]:
    """Nearest-rank quantiles of every expected value, the missing ones infinitely late."""
    ordered = sorted(values)

    def at(inner: list[float]) -> list[float]:
        return [ordered[max(1, math.ceil(q * len(ordered))) - 1] for q in inner]

    return quantiles_counting_missing(at, len(ordered), expected, levels)
