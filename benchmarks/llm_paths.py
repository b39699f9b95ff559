"""What the LLM features cost on the hot paths, side by side with the baseline in the same run.

1. The router's comparison of a free-text pair the cheap steps leave open:
   a cascade ``exact -> text`` (baseline: rapidfuzz, the pair stays undecided)
   vs ``exact -> judge`` (the pair is handed to the judge agent: cache key,
   job dict, JSON encoding of the job as the router queues it).
2. The word-level diff ``shadow show`` and the HTML report draw, on answers of
   1 KB and 10 KB, and the per-path JSON diff of a 200-key object, next to
   the ``text`` comparator's similarity on the same texts.

Microseconds per pair, best of --rounds.

    ./dev bench llm_paths.py
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from benchmarks.common import machine
from shadowstream.analytics.textdiff import diff_outputs
from shadowstream.core.config import load_settings
from shadowstream.stream_agents.comparators import build_comparator
from shadowstream.stream_agents.comparison import ComparisonBuilder


def text(n_bytes: int, variant: int, seed: int = 7) -> str:
    """Prose-like text: sentences of 6-24 words from a 400-word vocabulary; the variant
    changes about one word in 30 (as two answers of the same model differ)."""
    rng = random.Random(seed)
    vocabulary = [
        f"{c}{rng.choice('aeiou')}{rng.choice('nrstl')}{i}"
        for i, c in enumerate("bcdfghklmnprstvw" * 25)
    ]
    changes = random.Random(seed + variant)
    out: list[str] = []
    size = 0
    while size < n_bytes:
        sentence = [rng.choice(vocabulary) for _ in range(rng.randint(6, 24))]
        if variant:
            sentence = [
                changes.choice(vocabulary) if changes.random() < 1 / 30 else w for w in sentence
            ]
        line = " ".join(sentence).capitalize() + "."
        out.append(line)
        size += len(line) + 1
    return " ".join(out)


def best(fn: Callable[[], Any], n: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return min(times) * 1e6


def builder(last_step: dict[str, Any]) -> ComparisonBuilder:
    steps = [{"kind": "exact", "decide": "agree"}, last_step]
    settings = load_settings(
        None,
        challengers=[
            {
                "name": "llm",
                "callable": "m:f",
                "comparator": {"kind": "cascade", "options": {"steps": steps}},
            }
        ],
    )
    built = ComparisonBuilder.from_settings(settings)
    queued: list[bytes] = []
    built.on_judge = lambda job: queued.append(orjson.dumps(job))  # what the router does
    return built


def event(output: str, role: str) -> dict[str, Any]:
    return {
        "request_id": "r1",
        "role": role,
        "challenger": "llm" if role == "challenger" else "",
        "model": "m",
        "output": json.dumps(output),
        "latency_ms": 5.0,
        "status": "ok",
        "error": None,
        "usage": None,
        "tool_trace": None,
        "experiment_id": "live",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    request = {"request_id": "r1", "payload": json.dumps("Where is my parcel?"), "endpoint": "/q"}
    print(f"{'router, undecided free-text pair':<44}{'baseline':>16}{'with judge':>16}")
    for size in (200, 1_000, 4_000):
        a, b = event(text(size, 0), "champion"), event(text(size, 1), "challenger")
        base = builder({"kind": "text", "options": {"threshold": 0.999}})
        judged = builder({"kind": "judge", "options": {"model": "judge"}})
        t_base = best(lambda: base(request, a, b, "llm", "both_answered"), 2_000, args.rounds)  # noqa: B023
        t_judge = best(lambda: judged(request, a, b, "llm", "both_answered"), 2_000, args.rounds)  # noqa: B023
        label = f"  {size:>5}-byte answers (exact->text | ->judge)"
        print(f"{label:<44}{t_base:>13.1f} µs{t_judge:>13.1f} µs")
    print(f"\n{'display diff':<44}{'text comparator':>16}{'word diff':>16}")
    similarity = build_comparator("text", {"threshold": 0.9})
    for size in (1_000, 10_000, 50_000):
        a, b = text(size, 0), text(size, 1)
        t_sim = best(lambda: similarity.compare(a, b), 200, args.rounds)  # noqa: B023
        t_diff = best(lambda: diff_outputs(json.dumps(a), json.dumps(b)), 200, args.rounds)  # noqa: B023
        print(f"{f'  {size:>6}-byte answers':<44}{t_sim:>13.1f} µs{t_diff:>13.1f} µs")
    left = json.dumps({f"k{i}": {"v": i, "tags": ["a", "b"]} for i in range(200)})
    right = json.dumps({f"k{i}": {"v": i + (i % 10 == 0), "tags": ["a"]} for i in range(200)})
    t_json = best(lambda: diff_outputs(left, right), 200, args.rounds)
    print(f"{'  200-key JSON object, per-path diff':<44}{'':>16}{t_json:>13.1f} µs")


if __name__ == "__main__":
    main()
