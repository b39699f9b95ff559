"""The comparison builder per call: this checkout vs another revision, side by side.

The builder is the router's per-comparison Python work (the join hands it a
request, the champion's and a challenger's response). Cases: identical outputs
(the byte-equal shortcut, the common case), outputs that differ (JSON
comparator, paths), a declared output format checked on both sides, a
challenger that never answered, a request without a trace context; and the same with the Avro encode the router
does next. Prints microseconds per call, best of --rounds.

With ``--against REV`` the same cases also run on REV's code (``git archive``
into a temporary directory, the built C codec copied in) in a subprocess, and
both columns are printed with their ratio:

    ./dev bench comparison_builder.py
    ./dev bench comparison_builder.py --against 8076c2b
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHILD = "--child" in sys.argv
if not CHILD:  # a child measures the revision on its PYTHONPATH, not this checkout
    sys.path.insert(0, str(ROOT))

REQUEST = {
    "request_id": "r-000000042",
    "timestamp_us": 1_795_749_690_086_483,
    "service": "support-bot",
    "endpoint": "/v1/classify",
    "champion_model": "champion",
    "payload": '{"text": "where is my refund", "customer": 42}',
    "attributes": {"language": "en", "tier": "pro"},
    "experiment_id": "live",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
OUTPUT = '{"label": "refund", "score": 0.93, "tags": ["billing", "urgent"]}'
OTHER = '{"label": "billing", "score": 0.71, "tags": ["billing"]}'
FORMAT = {
    "type": "object",
    "required": ["label", "score"],
    "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
}


def response(role: str, output: str | None, status: str = "ok") -> dict[str, Any]:
    return {
        "request_id": "r-000000042",
        "timestamp_us": 1_795_749_690_091_483,
        "role": role,
        "challenger": "" if role == "champion" else "fast",
        "model": "distilled-v3",
        "output": output,
        "latency_ms": 4.2,
        "status": status,
        "error": None,
        "usage": {"tokens_in": 30, "tokens_out": 12, "tool_calls": None, "cost": None},
        "tool_trace": None,
        "experiment_id": "live",
    }


def cases() -> dict[str, Callable[[], Any]]:
    from shadowstream.schemas import COMPARISON
    from shadowstream.stream_agents.comparators import JsonComparator
    from shadowstream.stream_agents.comparison import ComparisonBuilder
    from shadowstream.stream_agents.formats import json_schema_check

    plain = ComparisonBuilder({"fast": JsonComparator()})
    checked = ComparisonBuilder({"fast": JsonComparator()}, {"fast": json_schema_check(FORMAT)})
    champion = response("champion", OUTPUT)
    same, other = response("challenger", OUTPUT), response("challenger", OTHER)
    answered = "both_answered"
    untraced = {**REQUEST, "traceparent": None}
    return {
        "identical outputs": lambda: plain(REQUEST, champion, same, "fast", answered),
        "identical, no trace": lambda: plain(untraced, champion, same, "fast", answered),
        "different outputs": lambda: plain(REQUEST, champion, other, "fast", answered),
        "different + format": lambda: checked(REQUEST, champion, other, "fast", answered),
        "challenger missing": lambda: plain(REQUEST, champion, None, "fast", "challenger_missing"),
        "identical + encode": lambda: COMPARISON.encode(
            plain(REQUEST, champion, same, "fast", answered)
        ),
        "different + encode": lambda: COMPARISON.encode(
            plain(REQUEST, champion, other, "fast", answered)
        ),
    }


def measure(calls: int, rounds: int) -> dict[str, float]:
    """Microseconds per call of each case, best of ``rounds``."""
    results = {}
    for name, fn in cases().items():
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best = min(best, (time.perf_counter() - start) / calls * 1e6)
        results[name] = best
    return results


def measure_revision(rev: str, calls: int, rounds: int) -> dict[str, float]:
    """The same cases on ``rev``'s code, in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="shadow-bench-rev-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        for built in (ROOT / "shadowstream" / "schemas").glob("_cavro*.so"):
            shutil.copy(built, Path(tmp) / "shadowstream" / "schemas")
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--calls", str(calls), "--rounds", str(rounds)],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp,
            env={**os.environ, "PYTHONPATH": tmp},
        ).stdout
    measured: dict[str, float] = json.loads(out)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", default=None, metavar="REV", help="also time REV's code")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls, args.rounds)))
        return
    here = measure(args.calls, args.rounds)
    there = measure_revision(args.against, args.calls, args.rounds) if args.against else {}
    print(
        f"comparison builder - {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d')}; µs per call, best of {args.rounds} x {args.calls:,}"
    )
    header = f"{'case':<22}{'this checkout':>15}"
    if there:
        header += f"{args.against[:12]:>15}{'ratio':>8}"
    print(header)
    for name, value in here.items():
        line = f"{name:<22}{value:>15.2f}"
        if name in there:
            line += f"{there[name]:>15.2f}{value / there[name]:>8.2f}"
        print(line)


if __name__ == "__main__":
    main()
