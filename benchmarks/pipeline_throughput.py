"""Pipeline throughput: comparisons landed in ClickHouse per second, vs the naive Faust join.

Requests and champion responses are produced flat out (a backlog), then the
agents are spawned and drain it: router(s) (fan-out + join), two challenger
workers with a no-op model, the ClickHouse sink, each its own process as in
production. The naive baseline (benchmarks/naive_faust.py: a straightforward
Faust pipeline with a Table join, fastavro codec) then drains the same
backlog on a fresh stack with as many worker processes as the machine has
cores (``--naive-workers``; Faust partitions the join across them).

Every run reports what each number covers:

* **steady state**: comparisons/s between 10% and 90% of the backlog landed;
* **whole run**: every comparison over spawn -> 100% landed, start-up
  included, with its parts apart: spawn -> processes ready, spawn -> first
  comparison queryable, spawn -> 90%, and the drain of the last 10%;
* **per core**: steady-state comparisons per second of CPU used (all the
  pipeline's processes and the broker, over ready -> 100% landed), so the
  ratio holds whatever number of cores each side kept busy.

    ./dev bench pipeline_throughput.py                 # 2 routers (one per core)
    ./dev bench pipeline_throughput.py --routers 1
    ./dev bench pipeline_throughput.py --repeat 3      # this VM is noisy: median ratios
    ./dev bench pipeline_throughput.py --requests 2000 --naive-requests 2000   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    NAIVE_CODECS,
    CpuMeter,
    NaiveWorkers,
    Timeline,
    machine,
    produce,
    seconds,
    stack,
    timeline,
)
from shadowstream.schemas import REQUEST

DEADLINE_S = 900


def challenger(name: str, fn: str) -> dict[str, object]:
    return {
        "name": name,
        "callable": f"benchmarks.noop_models:{fn}",
        "concurrency": 256,
        "timeout_seconds": 30,
    }


def ours(n: int, partitions: int, model: str, routers: int = 1) -> dict[str, Any]:
    with stack(
        [challenger("a", model), challenger("b", model)],
        partitions=partitions,
        join_window_seconds=120,
        sink_batch_rows=50_000,
        sink_batch_seconds=1.0,
        commit_interval_seconds=1.0,
    ) as s:
        produced = produce(s.settings, n)
        print(f"  backlog: {n:,} requests + {n:,} champion responses produced in {produced:.1f}s")
        total = 2 * n
        samples: list[tuple[float, int]] = []
        spawned = time.monotonic()
        procs = {
            **{
                f"router{i + 1}" if routers > 1 else "router": s.spawn(
                    ["worker", "router", "--no-create-topics"], f"router{i + 1}"
                )
                for i in range(routers)
            },
            "worker-a": s.spawn(
                ["worker", "challenger", "--name", "a", "--no-create-topics"], "wa"
            ),
            "worker-b": s.spawn(
                ["worker", "challenger", "--name", "b", "--no-create-topics"], "wb"
            ),
            "sink": s.spawn(["worker", "sink", "--no-create-topics"], "sink"),
        }
        for proc in procs.values():
            proc.wait_ready()
        ready = time.monotonic()
        pids = {name: p.proc.pid for name, p in procs.items() if p.proc}
        pids["broker"] = s.broker.pid or 0
        meter = CpuMeter(pids)
        meter.start()
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            landed = s.comparisons()
            samples.append((time.monotonic(), max(landed, 0)))
            if landed >= total:
                break
            time.sleep(0.5)
        cpu = meter.stop()
        return {"timeline": timeline(samples, total, spawned, ready), "cpu": cpu}


def naive(n: int, partitions: int, codec: str, workers: int) -> dict[str, Any]:
    with stack([challenger("a", "echo"), challenger("b", "echo")], partitions=partitions) as s:
        produce(s.settings, n)
        total = 2 * n
        samples: list[tuple[float, int]] = []
        spawned = time.monotonic()
        fleet = NaiveWorkers.spawn(s, ["a", "b"], partitions, codec, workers)
        meter = CpuMeter({**fleet.pids(), "broker": s.broker.pid or 0})
        meter.start()
        deadline = time.monotonic() + DEADLINE_S
        try:
            while time.monotonic() < deadline and fleet.alive():
                time.sleep(0.2)
                samples.append((time.monotonic(), fleet.poll()))
                if samples[-1][1] >= total:
                    break
                # (start-up, before the first insert, is slow: only a stall after it counts)
                if samples[-1][1] and samples[-1][0] - progress_at(samples) > 60:
                    print("  naive faust made no progress for 60 s; see naive-*.log", flush=True)
                    break
        finally:
            cpu = meter.stop()  # before terminate: a dead process has no CPU times to read
            fleet.stop()
        return {"timeline": timeline(samples, total, spawned), "cpu": cpu}


def progress_at(samples: list[tuple[float, int]]) -> float:
    """When the stored count last changed."""
    last = samples[-1][1]
    for at, stored in reversed(samples):
        if stored != last:
            return at
    return samples[0][0]


def per_core(rate: float, cpu: dict[str, float]) -> float:
    """Comparisons per second of CPU (all processes, the broker included)."""
    used = sum(cpu.values()) / 100
    return rate / used if used > 0 else 0.0


def report_round(fast: dict[str, Any], slow: dict[str, Any]) -> dict[str, float]:
    print(
        f"\n{'':14}{'steady state':>13}{'whole run':>11}{'landed':>10}{'ready':>8}{'first':>8}"
        f"{'90%':>8}{'drain':>8}{'per core':>10}   CPU % by process (ready -> 100%)"
    )
    print(
        f"{'':14}{'10%-90% /s':>13}{'spawn-100%':>11}{'':>10}{'':>8}{'landed':>8}"
        f"{'landed':>8}{'90-100%':>8}{'/CPU-s':>10}"
    )
    ratios = {}
    for label, r in (("shadowstream", fast), ("naive faust", slow)):
        t: Timeline = r["timeline"]
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in r["cpu"].items())
        core = per_core(t.steady_rate, r["cpu"])
        r["per_core"] = core
        steady = f"{t.steady_rate:,.0f}" if t.steady_rate else "-"
        print(
            f"{label:14}{steady:>13}{t.whole_rate:>11,.0f}{t.landed:>10,}"
            f"{seconds(t.ready_s):>8}{seconds(t.first_s):>8}{seconds(t.p90_s):>8}"
            f"{seconds(t.drain_s):>8}{core:>10,.0f}   {cpu} (total {sum(r['cpu'].values()):.0f})"
        )
        if t.landed < t.total:
            print(f"{'':14}only {t.landed:,} of {t.total:,} landed before the deadline")
    a, b = fast["timeline"], slow["timeline"]
    if not (a.steady_rate and b.steady_rate):
        print(
            "\nno steady-state window: 10% and 90% landed in the same sample (the sink "
            "inserts in steps); use a bigger backlog for ratios"
        )
    elif b.whole_rate and slow["per_core"]:
        ratios = {
            "steady": a.steady_rate / b.steady_rate,
            "whole": a.whole_rate / b.whole_rate,
            "per_core": fast["per_core"] / slow["per_core"],
        }
        print(
            f"\nratio to the naive Faust join: steady state {ratios['steady']:.1f}x, whole run "
            f"{ratios['whole']:.1f}x, per core of CPU used {ratios['per_core']:.1f}x"
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300_000, help="backlog (ours)")
    parser.add_argument(
        "--naive-requests",
        type=int,
        default=None,
        help="backlog (naive); default: the same as --requests",
    )
    parser.add_argument(
        "--naive-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="naive Faust worker processes in one group (default: one per core)",
    )
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument(
        "--naive-codec",
        choices=NAIVE_CODECS,
        default="fastavro",
        help="the naive pipeline's Avro codec (c: Shadowstream's own)",
    )
    parser.add_argument("--model", choices=["echo", "echo_async"], default="echo")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of (ours, naive), back to back; prints each ratio and the medians",
    )
    parser.add_argument(
        "--routers", type=int, default=2, help="router processes (one group): one per core"
    )
    args = parser.parse_args()
    naive_n = args.naive_requests if args.naive_requests is not None else args.requests
    print(f"pipeline throughput - {machine()}")
    print(
        f"shadowstream: {args.requests:,} requests x 2 challengers ({args.model} model), "
        f"{args.routers} router process(es) + 2 workers + sink, {args.partitions} partitions, "
        f"codec {REQUEST.backend}"
    )
    print(
        f"naive faust: {naive_n:,} requests x 2 challengers, {args.naive_workers} worker "
        f"process(es) in one group, codec {args.naive_codec}"
    )
    rounds: list[dict[str, float]] = []
    for round_ in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"\nround {round_} of {args.repeat}")
        fast = ours(args.requests, args.partitions, args.model, args.routers)
        print(f"  shadowstream done: {fast['timeline'].landed:,} comparisons landed", flush=True)
        slow = naive(naive_n, args.partitions, args.naive_codec, args.naive_workers)
        print(f"  naive faust done: {slow['timeline'].landed:,} comparisons landed", flush=True)
        ratios = report_round(fast, slow)
        if ratios:
            rounds.append(ratios)
    if len(rounds) > 1:
        for key, label in (("steady", "steady state"), ("whole", "whole run"),
                           ("per_core", "per core of CPU")):  # fmt: skip
            values = [r[key] for r in rounds]
            listed = ", ".join(f"{v:.1f}x" for v in values)
            print(f"{label:>16}: {listed}; median {statistics.median(values):.1f}x")


if __name__ == "__main__":
    main()
