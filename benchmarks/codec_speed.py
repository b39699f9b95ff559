"""Avro codec speed per event: the C codec vs the generated Python vs fastavro, side by side.

Times encode and decode of one representative event per schema (the same
bytes for every backend; single-object encoding, header included) and prints
microseconds per call, best of --rounds.

    ./dev bench codec_speed.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from shadowstream.schemas import EventCodec, SchemaRegistry, load_schema

REQUEST = {
    "request_id": "r-000000042",
    "timestamp_us": 1_795_749_690_086_483,
    "service": "support-bot",
    "endpoint": "/v1/classify",
    "champion_model": "champion",
    "payload": '{"text": "' + "where is my refund " * 12 + '", "customer": 42}',
    "attributes": {"language": "en", "tier": "pro"},
    "experiment_id": "live",
}
RESPONSE = {
    "request_id": "r-000000042",
    "timestamp_us": 1_795_749_690_091_483,
    "role": "challenger",
    "challenger": "fast",
    "model": "distilled-v3",
    "output": '{"label": "refund", "score": 0.93}',
    "latency_ms": 4.2,
    "status": "ok",
    "error": None,
    "usage": {"tokens_in": 30, "tokens_out": 12, "tool_calls": None, "cost": None},
    "tool_trace": None,
    "experiment_id": "live",
}
COMPARISON = {
    "request_id": "r-000000042",
    "challenger": "fast",
    "experiment_id": "live",
    "outcome": "both_answered",
    "service": "support-bot",
    "endpoint": "/v1/classify",
    "champion_model": "champion",
    "challenger_model": "distilled-v3",
    "request_ts_us": 1_795_749_690_086_483,
    "compared_at_us": 1_795_749_691_202_673,
    "champion_status": "ok",
    "challenger_status": "ok",
    "champion_latency_ms": 5.0,
    "challenger_latency_ms": 4.2,
    "latency_delta_ms": -0.8,
    "diverged": True,
    "divergence_score": 0.5,
    "comparator": "json",
    "diff_summary": "$.label: 'refund' != 'billing'",
    "diff_paths": ["$.label"],
    "ignored_paths": [],
    "champion_tokens_in": 30,
    "champion_tokens_out": 12,
    "attributes": {"language": "en", "tier": "pro"},
}
EVENTS = {"request_event": REQUEST, "response_event": RESPONSE, "comparison_event": COMPARISON}
BACKENDS = ("c", "python", "fastavro")


def per_call_us(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"codec speed - {machine()}; µs per call, best of {args.rounds} x {args.calls:,}")
    print(f"{'':18}" + "".join(f"{b + ' enc':>13}{b + ' dec':>13}" for b in BACKENDS))
    for name, record in EVENTS.items():
        schema = load_schema(name)
        row = f"{name:18}"
        data = EventCodec(schema, SchemaRegistry(), backend="fastavro").encode(record)
        for backend in BACKENDS:
            codec = EventCodec(schema, SchemaRegistry(), backend=backend)
            assert codec.encode(record) == data, f"{backend} encodes {name} differently"
            enc = per_call_us(partial(codec.encode, record), args.calls, args.rounds)
            dec = per_call_us(partial(codec.decode, data), args.calls, args.rounds)
            row += f"{enc:>13.2f}{dec:>13.2f}"
        print(row)


if __name__ == "__main__":
    main()
