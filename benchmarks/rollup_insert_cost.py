"""What the measure and resource rollups (migrations 0040, 0041) cost the sink per insert.

The sink inserts each batch of comparisons into ``comparisons_in``; every
materialized view hanging off it runs inside that insert. This script times
the same batches into two chDB databases side by side, one migrated without
0040/0041 (the baseline) and one with them, alternating batch by batch so
both see the same machine load:

* ``plain``: comparisons as the JSON comparator makes them (tokens, tool
  calls, cost on both sides; no measures) - every pipeline pays this;
* ``ranked``: the same with the five ranked-list measures - only challengers
  judged by the ranked comparator pay this.

    ./dev bench rollup_insert_cost.py                      # 10 batches of 20,000
    ./dev bench rollup_insert_cost.py --batches 3 --rows 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from shadowstream.schemas import COMPARISON
from shadowstream.sinks.clickhouse import migrations
from shadowstream.warehouse.client import Warehouse, connect
from tests.support import synthetic


def migrated(path: Path, database: str, up_to: int) -> Warehouse:
    wh = connect(f"chdb://{path}", database)
    everything = migrations.available_migrations
    migrations.available_migrations = lambda: [  # type: ignore[assignment]
        m for m in everything() if m.version <= up_to
    ]
    try:
        migrations.migrate(wh)
    finally:
        migrations.available_migrations = everything  # type: ignore[assignment]
    return wh


def batches(n: int, rows: int, ranked: bool) -> list[list[bytes]]:
    rng = random.Random(1)
    out = []
    for b in range(n):
        end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5 + b)
        reqs = synthetic.requests(rows // 2, seed=100 + b, end=end, span=dt.timedelta(minutes=1))
        events = synthetic.generate(
            reqs, {"a": synthetic.Behaviour(), "b": synthetic.Behaviour()}, seed=b
        )
        for e in events:  # usage that varies as an LLM's does (many distinct values)
            for side in ("champion", "challenger"):
                e[f"{side}_tokens_in"] = int(rng.lognormvariate(6, 0.6))
                e[f"{side}_tokens_out"] = int(rng.lognormvariate(4.5, 0.8))
                e[f"{side}_tool_calls"] = min(int(rng.expovariate(0.5)), 30)
                e[f"{side}_cost"] = rng.lognormvariate(-7, 0.7)
            if ranked:
                e["measures"] = {
                    "rbo@10,p=0.9": rng.random(),
                    "jaccard@10": rng.random(),
                    "overlap@10": rng.random(),
                    "shared@10": float(rng.randint(0, 10)),
                    "ndcg@10": rng.random(),
                }
        out.append([COMPARISON.encode(e)[10:] for e in events])
    return out


def timed(wh: Warehouse, bodies: list[bytes]) -> float:
    start = time.perf_counter()
    wh.insert_avro("comparisons_in", COMPARISON.schema, bodies)
    return (time.perf_counter() - start) * 1000


def run(kind: str, n: int, rows: int, workdir: Path) -> dict[str, Any]:
    data = batches(n, rows, kind == "ranked")
    base = migrated(workdir / "chdb", f"base_{kind}", 39)
    new = migrated(workdir / "chdb", f"new_{kind}", 10_000)
    times: dict[str, list[float]] = {"base": [], "new": []}
    for bodies in data:  # alternate, so both see the same load
        times["base"].append(timed(base, bodies))
        times["new"].append(timed(new, bodies))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20_000, help="comparisons per insert")
    args = parser.parse_args()
    print(f"rollup insert cost - {machine()}; {args.batches} inserts of {args.rows:,} comparisons")
    print(
        f"{'':10}{'without 0040/0041':>20}{'with them':>14}{'extra':>10}   ms per insert: "
        "fastest of the run (the CPU cost; the median below it shows the machine's noise)"
    )
    # chDB keeps its engine (and files) open until the process exits: no cleanup here
    tmp = tempfile.mkdtemp(prefix="shadow-bench-")
    try:
        for kind in ("plain", "ranked"):
            times = run(kind, args.batches, args.rows, Path(tmp))
            for label, pick in (("fastest", min), ("median", statistics.median)):
                base, new = pick(times["base"]), pick(times["new"])
                per_row = (new - base) / args.rows * 1000
                print(
                    f"{kind + ' ' + label:16}{base:>14,.0f}{new:>14,.0f}{new - base:>+10,.0f}   "
                    f"({per_row:+.1f} us per comparison, {new / base - 1:+.0%})"
                )
    finally:
        print(f"(data in {tmp}; remove it when done)")


if __name__ == "__main__":
    main()
