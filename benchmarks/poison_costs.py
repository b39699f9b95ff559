"""What refusing poison pills costs: strict decoding, the sink's C check, row isolation.

1. Decoding with the range and canonical-varint checks, side by side with the
   decoder before them (``--baseline-rev``: that revision's _cavro.c, compiled
   into a temporary directory and loaded beside today's).
2. The sink's per-event intake: before, it compared the header only; now it
   also walks each body with the C codec's check(). Beside it: decoding in C
   and in generated Python, what validating would cost without check().
3. Finding the rows ClickHouse refuses in a batch (chDB): bisection, against one
   insert of the same batch clean and against inserting row by row (timed on a
   sample of rows, extrapolated; the whole would take minutes).

    ./dev bench poison_costs.py [--baseline-rev dc8690d] [--rows 5000]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import sysconfig
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.codec_speed import EVENTS, per_call_us
from benchmarks.common import machine
from shadowstream.schemas import EventCodec, SchemaRegistry, load_schema
from shadowstream.schemas.fastcodec import compile_decoder, compile_native, native_spec, zz

ROOT = Path(__file__).resolve().parents[1]


def load_old_cavro(rev: str, workdir: Path) -> Any:
    """``rev``'s shadowstream/schemas/_cavro.c, built with the flags setup.py uses."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:shadowstream/schemas/_cavro.c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    c_file = workdir / "_cavro.c"
    c_file.write_text(source)
    target = workdir / f"_cavro{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", f"-I{include}", str(c_file), "-o", str(target)],
        check=True,
    )
    spec = importlib.util.spec_from_file_location("_cavro", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decoding(args: argparse.Namespace) -> None:
    print(f"\n1. body decode, µs per event (best of {args.rounds} x {args.calls:,})")
    with tempfile.TemporaryDirectory() as tmp:
        old = load_old_cavro(args.baseline_rev, Path(tmp)) if args.baseline_rev else None
        head = f"{'':18}{'C strict':>12}"
        if old is not None:
            head += f"{'C ' + args.baseline_rev[:7]:>14}{'cost':>9}"
        print(head + f"{'Python strict':>15}")
        for name, record in EVENTS.items():
            schema = load_schema(name)
            data = EventCodec(schema, SchemaRegistry()).encode(record)
            new = compile_native(schema)[1]  # the raw body decoders, old and new alike
            if old is None:
                strict = per_call_us(partial(new, data, 10), args.calls, args.rounds)
                row = f"{name:18}{strict:>12.2f}"
            else:  # rounds interleaved: a burst of load on the machine hits both
                before = old.compile(native_spec(schema)).decode
                strict, was = float("inf"), float("inf")
                for _ in range(args.rounds):
                    strict = min(strict, per_call_us(partial(new, data, 10), args.calls, 1))
                    was = min(was, per_call_us(partial(before, data, 10), args.calls, 1))
                row = f"{name:18}{strict:>12.2f}"
                row += f"{was:>14.2f}{(strict / was - 1) * 100:>+8.0f}%"
            python = compile_decoder(schema)
            py = per_call_us(partial(python, data, 10), args.calls, args.rounds)
            print(row + f"{py:>15.2f}")


def header_only(data: bytes, fp: bytes) -> bool:
    """What the sink checked per event before: today's schema, a request id."""
    return data[2:10] == fp and data[:2] == b"\xc3\x01" and data[10] != 0


def sink_intake(args: argparse.Namespace) -> None:
    print("\n2. the sink's intake per event, µs (header check only = before this change)")
    print(f"{'':18}{'header only':>13}{'C check':>10}{'C decode':>10}{'Py decode':>11}")
    for name, record in EVENTS.items():
        schema = load_schema(name)
        codec = EventCodec(schema, SchemaRegistry(), backend="c")
        python = EventCodec(schema, SchemaRegistry(), backend="python")
        data = codec.encode(record)
        fp = codec.fingerprint

        cells = [
            per_call_us(partial(header_only, data, fp), args.calls, args.rounds),
            per_call_us(partial(codec.validate, data), args.calls, args.rounds),
            per_call_us(partial(codec.decode, data), args.calls, args.rounds),
            per_call_us(partial(python.decode, data), args.calls, args.rounds),
        ]
        widths = (13, 10, 10, 11)
        print(f"{name:18}" + "".join(f"{c:>{w}.2f}" for c, w in zip(cells, widths, strict=True)))


def isolation(args: argparse.Namespace) -> None:
    from benchmarks.codec_speed import COMPARISON as RECORD
    from shadowstream.schemas import COMPARISON
    from shadowstream.sinks.clickhouse.isolation import RowIsolation
    from shadowstream.sinks.clickhouse.migrations import migrate
    from shadowstream.warehouse.client import connect

    rows = args.rows
    print(f"\n3. a batch of {rows:,} comparisons with k rows ClickHouse refuses (chDB), seconds")
    with tempfile.TemporaryDirectory() as tmp:
        wh = connect(f"chdb://{tmp}/data", "bench")
        migrate(wh, 90)
        now = time.time_ns() // 1000
        mark = zz(123_456_789)

        def body(i: int, bad: bool) -> bytes:
            record = {**RECORD, "request_id": f"r{i}", "request_ts_us": now - i}
            record["compared_at_us"] = now
            record["champion_tool_calls"] = 123_456_789 if bad else 1
            data = COMPARISON.encode(record)[10:]
            return data.replace(mark, zz(2**31)) if bad else data

        def insert(part: list[bytes]) -> None:
            wh.insert_avro("comparisons_in", COMPARISON.schema, part)

        sample = [body(i, False) for i in range(50)]
        started = time.perf_counter()
        for one in sample:
            insert([one])
        per_row = (time.perf_counter() - started) / len(sample)
        print(f"{'k bad':>6}{'clean insert':>14}{'bisection':>11}{'inserts':>9}{'row by row':>12}")
        for k in args.bad:
            step = max(rows // max(k, 1), 1)
            bad = {i * step + step // 2 for i in range(k)}
            bodies = [body(i, i in bad) for i in range(rows)]
            clean = [body(i, False) for i in range(rows)]
            started = time.perf_counter()
            insert(clean)
            clean_s = time.perf_counter() - started
            run = RowIsolation(bodies, insert, lambda b: None)
            started = time.perf_counter()
            run.run()
            took = time.perf_counter() - started
            assert {i for i, _, _ in run.rejected} == bad
            print(f"{k:>6}{clean_s:>14.2f}{took:>11.2f}{run.inserts:>9}{per_row * rows:>11.0f}*")
        print(f"* row by row: {per_row * 1000:.0f} ms per single-row insert (mean of 50) x rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-rev", default="dc8690d", help="'' to skip")
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--bad", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    print(f"poison-pill costs - {machine()}")
    decoding(args)
    sink_intake(args)
    isolation(args)


if __name__ == "__main__":
    main()
