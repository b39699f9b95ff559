"""Join state memory over simulated time, without Kafka: is the router's own state flat?

Drives the router's core (decode → join → build → encode, commit offsets and
marker expiry once per simulated second) at --rate requests/s for --minutes
of simulated time on a fake clock, and prints RSS once a simulated minute.
Markers fill up to their retention bound (rate x late retention x up to 1.5
generations) in the first ~2 minutes; after that RSS should stay flat. Any
growth seen in latency_memory.py beyond this is outside the join (librdkafka
buffers, lag spikes).

    ./dev bench join_memory.py --rate 1600 --minutes 20
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, make_events, rss_mb
from shadowstream.core.config import load_settings
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE
from shadowstream.stream_agents.comparison import build_comparison_builder
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.join import JoinEngine

SOURCE_REQUESTS, SOURCE_RESPONSES = 0, 2


def challenger_response(rid: str, name: str, output: str | None) -> bytes:
    return RESPONSE.encode(
        {
            "request_id": rid,
            "timestamp_us": 1,
            "role": "challenger",
            "challenger": name,
            "model": name,
            "output": output,
            "latency_ms": 1.0,
            "status": "ok",
            "usage": {},
            "experiment_id": "live",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1_600, help="requests per simulated second")
    parser.add_argument("--minutes", type=int, default=20, help="simulated minutes")
    parser.add_argument("--late-retention", type=float, default=120.0)
    args = parser.parse_args()
    names = ("a", "b")
    settings = load_settings(
        None, challengers=[{"name": n, "callable": "benchmarks.noop_models:echo"} for n in names]
    )
    now = [1_000.0]
    engine = JoinEngine(
        window_s=30,
        late_retention_s=args.late_retention,
        build=build_comparison_builder(settings),
        clock=lambda: now[0],
        wall_clock=lambda: now[0],
    )
    fanout = FanOut(settings.challengers)
    print(f"join memory - {machine()}; {args.rate:,} req/s for {args.minutes} simulated min")
    offset = 0
    rss: list[float] = []
    for second in range(args.minutes * 60):
        for _, request_bytes, response_bytes in make_events(args.rate, prefix=f"s{second}"):
            request = REQUEST.decode(request_bytes)
            engine.add_request(request, fanout.route, SOURCE_REQUESTS, offset)
            champion = RESPONSE.decode(response_bytes)
            out = engine.add_response(champion, SOURCE_RESPONSES, offset)
            for name in names:
                reply = challenger_response(request["request_id"], name, champion["output"])
                out += engine.add_response(RESPONSE.decode(reply), SOURCE_RESPONSES, offset)
            for comparison in out:
                COMPARISON.encode(comparison)
            offset += 1
        now[0] += 1.0
        engine.expire()
        engine.drain_markers()
        for source in (SOURCE_REQUESTS, SOURCE_RESPONSES):
            engine.commit_offset(source, offset)
        if second % 60 == 59:
            gc.collect()
            rss.append(rss_mb(os.getpid()))
            print(
                f"  t={second + 1:>5}s  markers {engine.markers:>8,}  open {engine.open_entries:>6,}"
                f"  held {engine.held_events():>6,}  RSS {rss[-1]:.1f} MB",
                flush=True,
            )
    third = len(rss) // 3
    if third:
        middle = sum(rss[third : 2 * third]) / third
        last = sum(rss[2 * third :]) / len(rss[2 * third :])
        print(f"RSS last third vs middle third: {(last - middle) / middle:+.1%}")


if __name__ == "__main__":
    main()
