"""Pipeline throughput: comparisons landed in ClickHouse per second, vs the naive Faust join.

Requests and champion responses are produced flat out (a backlog), then the
agents drain it: router (fan-out + join), two challenger workers with a no-op
model, the ClickHouse sink, each its own process as in production. The rate
is measured between 10% and 90% of the comparisons landing; CPU is per
process over the same run. The naive baseline (benchmarks/naive_faust.py: a
straightforward Faust pipeline with a Table join, fastavro codec) drains a
smaller backlog on the same broker right after, and the ratio is printed.
``--naive-codec c`` gives the naive pipeline Shadowstream's C codec too.

    ./dev bench pipeline_throughput.py                 # 2 routers (one per core)
    ./dev bench pipeline_throughput.py --routers 1
    ./dev bench pipeline_throughput.py --repeat 3      # this VM is noisy: median ratio
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    NAIVE_CODECS,
    CpuMeter,
    machine,
    produce,
    rate_over,
    run_naive,
    stack,
)
from shadowstream.schemas import REQUEST


def challenger(name: str, fn: str) -> dict[str, object]:
    return {
        "name": name,
        "callable": f"benchmarks.noop_models:{fn}",
        "concurrency": 256,
        "timeout_seconds": 30,
    }


def ours(n: int, partitions: int, model: str, routers: int = 1) -> dict[str, float]:
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
        pids = {name: p.proc.pid for name, p in procs.items() if p.proc}
        pids["broker"] = s.broker.pid or 0
        meter = CpuMeter(pids)
        meter.start()
        total = 2 * n
        samples: list[tuple[float, int]] = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            landed = s.comparisons()
            samples.append((time.monotonic(), landed))
            if landed >= total:
                break
            time.sleep(0.5)
        cpu = meter.stop()
        rate = rate_over(samples, total)
        return {"rate": rate, "landed": samples[-1][1], **{f"cpu_{k}": v for k, v in cpu.items()}}


def naive(n: int, partitions: int, codec: str) -> dict[str, float]:
    with stack([challenger("a", "echo"), challenger("b", "echo")], partitions=partitions) as s:
        produce(s.settings, n)
        proc = run_naive(
            s.settings.broker_url.removeprefix("kafka://"),
            s.settings.topic_prefix,
            ["a", "b"],
            partitions,
            s.workdir,
            codec,
        )
        meter = CpuMeter({"naive": proc.pid, "broker": s.broker.pid or 0})
        meter.start()
        samples: list[tuple[float, int]] = []
        total = 2 * n
        deadline = time.monotonic() + 600
        try:
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            buffer = b""
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
                buffer += proc.stdout.read() or b""
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.startswith(b"{"):
                        samples.append((time.monotonic(), json.loads(line)["stored"]))
                if samples and samples[-1][1] >= total:
                    break
                # (start-up, before the first insert, is slow: only a stall after it counts)
                if samples and samples[-1][1] and samples[-1][0] - progress_at(samples) > 60:
                    print("  naive faust made no progress for 60 s; see naive.log", flush=True)
                    break
        finally:
            cpu = meter.stop()  # before terminate: a dead process has no CPU times to read
            proc.terminate()
            proc.wait(30)
        return {
            "rate": rate_over(samples, total),
            "landed": samples[-1][1] if samples else 0,
            **{f"cpu_{k}": v for k, v in cpu.items()},
        }


def progress_at(samples: list[tuple[float, int]]) -> float:
    """When the stored count last changed."""
    last = samples[-1][1]
    for at, stored in reversed(samples):
        if stored != last:
            return at
    return samples[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300_000, help="backlog (ours)")
    parser.add_argument(
        "--naive-requests",
        type=int,
        default=30_000,
        help="backlog (naive); under ~20k its start-up transient flatters it",
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
        help="rounds of (ours, naive), back to back; prints each ratio and the median",
    )
    parser.add_argument(
        "--routers", type=int, default=2, help="router processes (one group): one per core"
    )
    args = parser.parse_args()
    print(f"pipeline throughput - {machine()}")
    print(
        f"shadowstream: {args.requests:,} requests x 2 challengers ({args.model} model), "
        f"{args.routers} router process(es), {args.partitions} partitions, "
        f"codec {REQUEST.backend}"
    )
    print(
        f"naive faust: {args.naive_requests:,} requests x 2 challengers, codec {args.naive_codec}"
    )
    ratios: list[float] = []
    for round_ in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"\nround {round_} of {args.repeat}")
        fast = ours(args.requests, args.partitions, args.model, args.routers)
        print(f"  shadowstream {fast['rate']:,.0f} comparisons/s", flush=True)
        slow = naive(args.naive_requests, args.partitions, args.naive_codec)
        print(f"  naive faust  {slow['rate']:,.0f} comparisons/s", flush=True)
        print()
        print(f"{'':14}{'comparisons/s':>15}{'landed':>10}   CPU % by process")
        for label, r in (("shadowstream", fast), ("naive faust", slow)):
            cpu = ", ".join(f"{k[4:]} {v:.0f}" for k, v in r.items() if k.startswith("cpu_"))
            print(f"{label:14}{r['rate']:>15,.0f}{int(r['landed']):>10,}   {cpu}")
        if slow["rate"]:
            ratios.append(fast["rate"] / slow["rate"])
            print(f"\nratio: {ratios[-1]:.1f}x the naive Faust join")
    if len(ratios) > 1:
        listed = ", ".join(f"{r:.1f}x" for r in ratios)
        print(
            f"\nratios over {len(ratios)} rounds: {listed}; median {statistics.median(ratios):.1f}x"
        )


if __name__ == "__main__":
    main()
