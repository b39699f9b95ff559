"""End-to-end latency and memory at a steady load, vs the naive Faust join.

Traffic is produced at a fixed rate for --minutes. Every comparison's latency is the time
from the *second* side of its pair being produced (the later of the champion's
and the challenger's response) to the comparison being queryable in ClickHouse
(its inserted_at). RSS and the router's open requests / markers are sampled
every 10 s; memory is "flat" when the last third of the run stays within
+-10% of the middle third. CPU per process (the broker included) is sampled
with them.

Defaults: 1,600 requests/s on 2 partitions. On the embedded broker (Tansu,
memory storage) steady traffic is bounded by the broker, not the agents: its
CPU grows with partitions x record batches in the log (it keeps everything),
so 8 partitions fall behind near 3,300 requests/s and show multi-second lag
spikes at 1,600, while 2 partitions hold p99 near 2 s for minutes. Against
Apache Kafka, use the partition count you deploy.

    ./dev bench latency_memory.py                         # 1,600 req/s, 2 partitions, 10 min
    ./dev bench latency_memory.py --rate 4000 --partitions 8 --minutes 3
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from benchmarks.common import NAIVE_CODECS, machine, produce, rss_mb, run_naive, stack


def challenger(name: str) -> dict[str, object]:
    return {
        "name": name,
        "callable": "benchmarks.noop_models:echo_async",
        "concurrency": 256,
        "timeout_seconds": 30,
    }


def steady(s: Any, rate: float, seconds: float) -> threading.Thread:
    def run() -> None:
        produce(s.settings, int(rate * seconds), rate=rate, prefix=f"s{int(time.time())}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


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
    rate: float, minutes: float, partitions: int = 8, kafka_options: dict[str, str] | None = None
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
        time.sleep(5)
        wh = s.warehouse()
        db = wh.database
        # total, and its two legs: second side -> joined in the router (compared_at),
        # and router -> stored by the sink (inserted_at)
        latency = wh.query(
            f"""
            SELECT
                quantiles(0.5, 0.99)(dateDiff('millisecond', greatest(ch.response_time,
                    cl.response_time), c.inserted_at)),
                quantiles(0.5, 0.99)(dateDiff('millisecond', greatest(ch.response_time,
                    cl.response_time), c.compared_at)),
                quantiles(0.5, 0.99)(dateDiff('millisecond', c.compared_at, c.inserted_at))
            FROM {db}.comparisons AS c
            INNER JOIN {db}.responses AS ch
                ON ch.request_id = c.request_id AND ch.role = 'champion'
            INNER JOIN {db}.responses AS cl
                ON cl.request_id = c.request_id AND cl.role = 'challenger'
               AND cl.challenger = c.challenger
            WHERE c.is_late = 0
            """
        ).rows[0]
        total, joined, stored = latency
        return {
            "p50_ms": total[0],
            "p99_ms": total[1],
            "join_ms": joined,
            "store_ms": stored,
            "samples": samples,
        }


def naive(
    rate: float, minutes: float, partitions: int = 8, codec: str = "fastavro"
) -> dict[str, Any]:
    """The naive Faust pipeline at its own steady rate: RSS over time, and latency from the
    request being produced to its comparison being stored (an upper bound of the same)."""
    with stack([challenger("a"), challenger("b")], partitions=partitions) as s:
        bootstrap = s.settings.broker_url.removeprefix("kafka://")
        proc = run_naive(
            bootstrap, s.settings.topic_prefix, ["a", "b"], partitions, s.workdir, codec
        )
        time.sleep(10)  # group join
        generator = steady(s, rate, minutes * 60)
        rss: list[float] = []
        while generator.is_alive():
            time.sleep(10)
            rss.append(round(rss_mb(proc.pid), 1))
            print(f"  naive rss {rss[-1]} MB", flush=True)
        time.sleep(10)
        proc.terminate()
        proc.wait(30)
        from shadowstream.warehouse.client import connect

        wh = connect(f"chdb://{s.workdir / 'naive-chdb'}", "default")
        p50, p99 = wh.query(
            "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', "
            "fromUnixTimestamp64Micro(request_ts_us), inserted_at)) FROM naive_comparisons"
        ).scalar()
        return {"rss": rss, "p50_ms": p50, "p99_ms": p99}


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
    parser.add_argument("--naive-rate", type=float, default=1_000, help="naive baseline req/s")
    parser.add_argument("--naive-minutes", type=float, default=3, help="0 skips the naive baseline")
    parser.add_argument("--naive-codec", choices=NAIVE_CODECS, default="fastavro")
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
    result = ours(args.rate, args.minutes, args.partitions, options)
    print(
        f"\nend-to-end latency (second side produced -> comparison queryable): "
        f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms\n"
        f"  of which second side -> joined by the router: p50 {result['join_ms'][0]:.0f} ms, "
        f"p99 {result['join_ms'][1]:.0f} ms;\n"
        f"  router -> stored by the sink: p50 {result['store_ms'][0]:.0f} ms, "
        f"p99 {result['store_ms'][1]:.0f} ms"
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
    if args.naive_minutes <= 0:
        return
    print(
        f"\nnaive faust at {args.naive_rate:,.0f} requests/s for {args.naive_minutes} min "
        f"(codec {args.naive_codec}):"
    )
    base = naive(args.naive_rate, args.naive_minutes, args.partitions, args.naive_codec)
    print(
        f"   latency (request produced -> comparison stored, an upper bound): "
        f"p50 {base['p50_ms']:.0f} ms, p99 {base['p99_ms']:.0f} ms"
    )
    print(
        f"   RSS {base['rss'][0]:.0f} -> {base['rss'][-1]:.0f} MB, last third vs middle third "
        f"{flatness(base['rss']):+.1%}"
    )


if __name__ == "__main__":
    main()
