"""End-to-end latency and memory at a steady load, vs the naive Faust join.

Traffic is produced at a fixed rate for --minutes. A comparison's latency is the
time from its **request being produced** to the comparison being **queryable**
in ClickHouse (its inserted_at), and **every request counts**: after the load
stops, the run waits up to --window seconds for the rest to land; any comparison
still missing then is reported as not landed and counted as infinitely late in
the quantiles (a p99 is "not landed" when more than 1% never arrived), never
dropped. The legs are kept apart: request produced -> challenger answered
(fan-out and the model), later of the two sides produced -> joined by the
router (compared_at), joined -> stored by the sink (inserted_at).

RSS and the router's open requests / markers are sampled every 10 s; memory is
"flat" when the last third of the run stays within +-10% of the middle third.
CPU per process (the broker included) is sampled with them.

Defaults: 1,600 requests/s on 2 partitions. On the embedded broker (Tansu,
memory storage) steady traffic is bounded by the broker, not the agents: its
CPU grows with partitions x record batches in the log (it keeps everything),
so 8 partitions fall behind near 3,300 requests/s and show multi-second lag
spikes at 1,600, while 2 partitions hold p99 near 2 s for minutes. Against
Apache Kafka, use the partition count you deploy.

    ./dev bench latency_memory.py                         # 1,600 req/s, 2 partitions, 10 min
    ./dev bench latency_memory.py --rate 4000 --partitions 8 --minutes 3
    ./dev bench latency_memory.py --rate 200 --minutes 0.5 --naive-minutes 0.5   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from benchmarks.common import (
    NAIVE_CODECS,
    NaiveWorkers,
    chdb_rows,
    exact_quantiles_counting_missing,
    machine,
    produce,
    quantiles_counting_missing,
    rss_mb,
    stack,
)

LEVELS = (0.5, 0.99)


def challenger(name: str) -> dict[str, object]:
    return {
        "name": name,
        "callable": "benchmarks.noop_models:echo_async",
        "concurrency": 256,
        "timeout_seconds": 30,
    }


def steady(s: Any, rate: float, seconds: float) -> threading.Thread:
    def run() -> None:
        produce(s.settings, requests_for(rate, seconds), rate=rate, prefix=f"s{int(time.time())}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def requests_for(rate: float, seconds: float) -> int:
    return int(rate * seconds)


PROBES = 50  # warm-up requests before the load: the pipeline is consuming when they land


def warm_up(settings: Any, count: Any, timeout: float = 180.0) -> float:
    """Produce PROBES requests and wait until their comparisons are stored, so the load starts
    on a pipeline that consumes every partition (the same for ours and the naive one);
    returns the seconds it took. Their comparisons are left out of every latency."""
    start = time.monotonic()
    produce(settings, PROBES, prefix="warm")
    while count() < 2 * PROBES and time.monotonic() - start < timeout:
        time.sleep(0.5)
    return time.monotonic() - start


def wait_landed(count: Any, expected: int, window: float) -> tuple[int, float]:
    """Poll ``count()`` until ``expected`` landed or ``window`` seconds passed; returns what
    landed and the wall-clock cutoff (epoch seconds) the quantiles are taken at."""
    deadline = time.monotonic() + window
    landed = count()
    while landed < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        landed = count()
    return landed, time.time()


def sink_timing(now: dict[str, Any], before: dict[str, Any]) -> dict[str, float]:
    """The sink's batches in the last interval and the ms each spent storing and committing."""
    batches = (now.get("batches") or 0) - (before.get("batches") or 0)
    if batches <= 0:
        return {"batches": 0}
    out: dict[str, float] = {"batches": batches}
    for key, value in now.items():
        if key.startswith("insert_ms_") or key == "commit_ms":
            spent = (value or 0) - (before.get(key) or 0)
            if spent:
                out[key.removeprefix("insert_")] = round(spent / batches)
    return out


def flatness(series: list[float]) -> float:
    """Relative change of the last third's mean vs the middle third's mean."""
    third = len(series) // 3
    if third == 0:
        return 0.0
    middle = sum(series[third : 2 * third]) / third
    last = sum(series[2 * third :]) / len(series[2 * third :])
    return (last - middle) / middle if middle else 0.0


def ours(
    rate: float,
    minutes: float,
    partitions: int = 8,
    kafka_options: dict[str, str] | None = None,
    window: float = 30.0,
) -> dict[str, Any]:
    # the default settings (join window, commit interval, sink batches): what users run
    with stack(
        [challenger("a"), challenger("b")],
        partitions=partitions,
        kafka_options=kafka_options or {},
    ) as s:
        procs = {
            "router": s.spawn(["worker", "router", "--no-create-topics"], "router"),
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
        # CPU % of one core per process over each 10 s interval: lag spikes line up
        # with the broker's CPU (see the README's performance section)
        watched = {n: p.proc.pid for n, p in procs.items() if p.proc}
        watched["broker"] = s.broker.pid or 0
        cpu = {n: psutil.Process(pid) for n, pid in watched.items() if pid}
        for proc in cpu.values():
            proc.cpu_percent(None)
        warmed = warm_up(s.settings, s.comparisons)
        print(f"  warm-up: {PROBES} requests' comparisons stored after {warmed:.1f} s")
        generator = steady(s, rate, minutes * 60)
        samples: list[dict[str, Any]] = []
        last_sink: dict[str, Any] = {}
        started = time.monotonic()
        while generator.is_alive():
            time.sleep(10)
            router_metrics = procs["router"].metrics()
            router = router_metrics.get("router", {})
            sample = {
                "t": round(time.monotonic() - started),
                **{f"rss_{n}": round(rss_mb(p.proc.pid), 1) for n, p in procs.items() if p.proc},
                "open_requests": router.get("open_requests"),
                "markers": router.get("markers"),
                "landed": s.comparisons(),
                "cpu": {n: round(p.cpu_percent(None)) for n, p in cpu.items()},
                "router_memory": router_metrics.get("process"),
            }
            # one read of the sink's counters per interval: the next interval's baseline
            sink_now = procs["sink"].metrics().get("sink", {})
            sample["sink"] = sink_timing(sink_now, last_sink)
            last_sink = sink_now
            samples.append(sample)
            print("  " + json.dumps(sample), flush=True)
        expected = 2 * requests_for(rate, minutes * 60)
        _, cutoff = wait_landed(s.comparisons, expected + 2 * PROBES, window)
        return {**latencies(s.warehouse(), expected, cutoff, window), "samples": samples}


def latencies(wh: Any, expected: int, cutoff: float, window: float) -> dict[str, Any]:
    """Request produced -> queryable over every expected comparison, and the three legs."""
    db = wh.database
    landed_sql = (
        f"c.is_late = 0 AND c.inserted_at <= fromUnixTimestamp64Milli({int(cutoff * 1000)}) "
        "AND NOT startsWith(c.request_id, 'warm')"  # the warm-up probes
    )
    landed = int(
        wh.query(f"SELECT count() FROM {db}.comparisons AS c FINAL WHERE {landed_sql}").scalar()
        or 0
    )

    def total_at(levels: list[float]) -> list[float]:
        listed = ", ".join(f"{q:.9f}" for q in levels)
        return list(
            wh.query(
                f"SELECT quantilesExact({listed})(dateDiff('millisecond', c.request_time, "
                f"c.inserted_at)) FROM {db}.comparisons AS c FINAL WHERE {landed_sql}"
            ).scalar()
        )

    total = quantiles_counting_missing(total_at, landed, expected, LEVELS)
    legs = wh.query(
        f"""
        SELECT
            quantilesExact(0.5, 0.99)(dateDiff('millisecond', c.request_time, cl.response_time)),
            quantilesExact(0.5, 0.99)(dateDiff('millisecond', greatest(ch.response_time,
                cl.response_time), c.compared_at)),
            quantilesExact(0.5, 0.99)(dateDiff('millisecond', c.compared_at, c.inserted_at))
        FROM {db}.comparisons AS c FINAL
        INNER JOIN {db}.responses AS ch
            ON ch.request_id = c.request_id AND ch.role = 'champion'
        INNER JOIN {db}.responses AS cl
            ON cl.request_id = c.request_id AND cl.role = 'challenger'
           AND cl.challenger = c.challenger
        WHERE {landed_sql}
        """
    ).rows[0]
    fanout, joined, stored = legs
    return {
        "expected": expected,
        "landed": landed,
        "window": window,
        "total": total,
        "fanout_ms": fanout,
        "join_ms": joined,
        "store_ms": stored,
    }


def naive(
    rate: float,
    minutes: float,
    partitions: int = 8,
    codec: str = "fastavro",
    workers: int = 1,
    window: float = 30.0,
) -> dict[str, Any]:
    """The naive Faust pipeline at its own steady rate: RSS over time, and latency from the
    request being produced to its comparison being stored, every request counted."""
    with stack([challenger("a"), challenger("b")], partitions=partitions) as s:
        fleet = NaiveWorkers.spawn(s, ["a", "b"], partitions, codec, workers)
        try:
            warmed = warm_up(s.settings, fleet.poll)
            print(f"  warm-up: {PROBES} requests' comparisons stored after {warmed:.1f} s")
            generator = steady(s, rate, minutes * 60)
            rss: list[float] = []
            while generator.is_alive():
                time.sleep(10)
                fleet.poll()
                rss.append(round(sum(rss_mb(pid) for pid in fleet.pids().values()), 1))
                print(f"  naive rss {rss[-1]} MB ({workers} process(es))", flush=True)
            expected = 2 * requests_for(rate, minutes * 60)
            wait_landed(fleet.poll, expected + 2 * PROBES, window)
        finally:
            fleet.stop()
        values: list[float] = []
        for i in range(workers):
            rows = chdb_rows(
                s.workdir / f"naive-chdb-{i}",
                "default",
                "SELECT dateDiff('millisecond', fromUnixTimestamp64Micro(request_ts_us), "
                "inserted_at) FROM naive_comparisons WHERE NOT startsWith(request_id, 'warm')",
            )
            values += [float(r[0]) for r in rows]
        total = exact_quantiles_counting_missing(values, expected, LEVELS)
        return {"rss": rss, "total": total, "expected": expected, "landed": len(values)}


def landed_line(result: dict[str, Any]) -> str:
    missing = result["expected"] - result["landed"]
    return (
        f"{result['landed']:,} of {result['expected']:,} comparisons landed within "
        f"{result.get('window', 30):.0f} s of the load stopping"
        + (f"; {missing:,} never did (counted as not landed)" if missing else "")
    )


def ms(value: float | None) -> str:
    return "not landed" if value is None else f"{value:,.0f} ms"


def print_ours(result: dict[str, Any]) -> None:
    p50, p99 = result["total"]
    print(
        f"\nend-to-end latency, request produced -> comparison queryable, every request "
        f"counted: p50 {ms(p50)}, p99 {ms(p99)}\n  {landed_line(result)}\n"
        f"  legs (of the landed ones), p50 / p99:\n"
        f"    request produced -> challenger answered (fan-out, model): "
        f"{ms(result['fanout_ms'][0])} / {ms(result['fanout_ms'][1])}\n"
        f"    later side produced -> joined by the router: "
        f"{ms(result['join_ms'][0])} / {ms(result['join_ms'][1])}\n"
        f"    joined -> stored by the sink: "
        f"{ms(result['store_ms'][0])} / {ms(result['store_ms'][1])}"
    )
    for key in [k for k in result["samples"][0] if k.startswith("rss_")]:
        series = [s[key] for s in result["samples"]]
        print(
            f"{key[4:]:>9}: RSS {series[0]:.0f} -> {series[-1]:.0f} MB "
            f"(max {max(series):.0f}), last third vs middle third {flatness(series):+.1%}"
        )
    opens = [s["open_requests"] or 0 for s in result["samples"]]
    markers = [s["markers"] or 0 for s in result["samples"]]
    print(
        f"   router: open requests max {max(opens):,}, markers max {max(markers):,} "
        f"(last third vs middle {flatness([float(m) for m in markers]):+.1%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1_600, help="requests/s (2 comparisons each)")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--partitions",
        type=int,
        default=2,
        help="default 2: the embedded broker's CPU grows with partitions x batches",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=30.0,
        help="seconds after the load stops for the last comparisons to land (default 30)",
    )
    parser.add_argument("--naive-rate", type=float, default=1_000, help="naive baseline req/s")
    parser.add_argument("--naive-minutes", type=float, default=3, help="0 skips the naive baseline")
    parser.add_argument("--naive-codec", choices=NAIVE_CODECS, default="fastavro")
    parser.add_argument(
        "--naive-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="naive Faust worker processes in one group (default: one per core)",
    )
    parser.add_argument(
        "--kafka-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a librdkafka property for every client of the pipeline (repeatable)",
    )
    args = parser.parse_args()
    options = dict(o.split("=", 1) for o in args.kafka_option)
    print(f"latency and memory - {machine()}; {args.rate:,.0f} requests/s for {args.minutes} min")
    if options:
        print(f"kafka options: {options}")
    print_ours(ours(args.rate, args.minutes, args.partitions, options, args.window))
    if args.naive_minutes <= 0:
        return
    print(
        f"\nnaive faust at {args.naive_rate:,.0f} requests/s for {args.naive_minutes} min "
        f"({args.naive_workers} worker process(es), codec {args.naive_codec}):"
    )
    base = naive(
        args.naive_rate,
        args.naive_minutes,
        args.partitions,
        args.naive_codec,
        args.naive_workers,
        args.window,
    )
    p50, p99 = base["total"]
    print(
        f"   latency, request produced -> comparison stored, every request counted: "
        f"p50 {ms(p50)}, p99 {ms(p99)}\n   {landed_line({**base, 'window': args.window})}"
    )
    print(
        f"   RSS (all its processes) {base['rss'][0]:.0f} -> {base['rss'][-1]:.0f} MB, "
        f"last third vs middle third {flatness(base['rss']):+.1%}"
    )


if __name__ == "__main__":
    main()
