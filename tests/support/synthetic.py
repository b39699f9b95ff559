"""Synthetic comparisons with planted differences, inserted the way the sink does.

Events are ComparisonEvent records (shadowstream/schemas/avro/comparison_event.avsc) encoded
with the real codec and inserted through ``comparisons_in`` with
``Warehouse.insert_avro``: the same path, materialized views and first-seen
filter as production traffic.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shadowstream.schemas import COMPARISON
from shadowstream.warehouse.client import Warehouse

HEADER = 10
LANGUAGES = [("en", 0.5), ("de", 0.25), ("fr", 0.15), ("es", 0.10)]
TIERS = [("free", 0.6), ("pro", 0.4)]


def _pick(rng: random.Random, options: list[tuple[str, float]]) -> str:
    roll, acc = rng.random(), 0.0
    for value, weight in options:
        acc += weight
        if roll < acc:
            return value
    return options[-1][0]


@dataclass(frozen=True)
class Request:
    request_id: str
    at: dt.datetime
    attributes: dict[str, str]
    champion_latency_ms: float


def requests(
    n: int, *, seed: int = 7, end: dt.datetime | None = None, span: dt.timedelta | None = None
) -> list[Request]:
    """n requests spread evenly over ``span`` before ``end`` (default: the last 2 hours)."""
    rng = random.Random(seed)
    end = end or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    span = span or dt.timedelta(hours=2)
    out = []
    for i in range(n):
        at = end - span + span * (i / max(n, 1))
        attrs = {"language": _pick(rng, LANGUAGES), "tier": _pick(rng, TIERS)}
        out.append(Request(f"req-{seed}-{i}", at, attrs, rng.lognormvariate(3.9, 0.2)))
    return out


@dataclass
class Behaviour:
    """How a synthetic challenger behaves on one request."""

    divergence: float = 0.02
    divergence_by: Callable[[Request], float | None] | None = None  # override per request
    latency_factor: float = 1.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    invalid_format_rate: float = 0.0
    format_checked: bool = True


def comparison(
    request: Request,
    challenger: str,
    behaviour: Behaviour,
    rng: random.Random,
    *,
    experiment_id: str = "live",
    compared_at_delay_s: float = 5.0,
    endpoint: str = "/v1/classify",
) -> dict[str, Any]:
    roll = rng.random()
    status = "ok"
    if roll < behaviour.error_rate:
        status = "error"
    elif roll < behaviour.error_rate + behaviour.timeout_rate:
        status = "timeout"
    answered = status == "ok"
    p = behaviour.divergence_by(request) if behaviour.divergence_by else None
    diverged = answered and rng.random() < (behaviour.divergence if p is None else p)
    invalid = answered and rng.random() < behaviour.invalid_format_rate
    if invalid:
        diverged = True
    latency = (
        rng.lognormvariate(3.9, 0.2) * behaviour.latency_factor
        if status == "ok"
        else (2000.0 if status == "timeout" else 12.0)
    )
    ts = int(request.at.timestamp() * 1_000_000)
    checked = behaviour.format_checked
    return {
        "request_id": request.request_id,
        "challenger": challenger,
        "experiment_id": experiment_id,
        "outcome": "both_answered" if status != "timeout" else "challenger_missing",
        "service": "svc",
        "endpoint": endpoint,
        "champion_model": "champion-v1",
        "challenger_model": f"{challenger}-v1",
        "request_ts_us": ts,
        "compared_at_us": ts + int(compared_at_delay_s * 1_000_000),
        "champion_status": "ok",
        "challenger_status": status,
        "champion_latency_ms": request.champion_latency_ms,
        "challenger_latency_ms": latency if status == "ok" else None,
        "latency_delta_ms": latency - request.champion_latency_ms if status == "ok" else None,
        "diverged": diverged if answered else None,
        "divergence_score": (1.0 if diverged else 0.0) if answered else None,
        "comparator": "json",
        "diff_summary": ("1 of 3 fields differ: $.label" if diverged else "")
        + (" (not JSON)" if invalid else ""),
        "diff_paths": ["$.label"] if diverged else [],
        "ignored_paths": [],
        "champion_format_valid": True if checked else None,
        "challenger_format_valid": (not invalid) if (checked and answered) else None,
        "champion_tokens_in": 100,
        "champion_tokens_out": 20,
        "challenger_tokens_in": 100 if answered else None,
        "challenger_tokens_out": 30 if answered else None,
        "champion_tool_calls": 1,
        "challenger_tool_calls": 2 if answered else None,
        "champion_cost": 0.001,
        "challenger_cost": 0.002 if answered else None,
        "champion_error": None,
        "challenger_error": "HTTP 500" if status == "error" else None,
        "attributes": dict(request.attributes),
    }


def generate(
    reqs: Iterable[Request], behaviours: dict[str, Behaviour], seed: int = 11, **kwargs: Any
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [comparison(r, name, b, rng, **kwargs) for name, b in behaviours.items() for r in reqs]


def insert(warehouse: Warehouse, events: list[dict[str, Any]], batch: int = 5000) -> None:
    """Insert like the sink: Avro bodies (no single-object header) into comparisons_in."""
    for start in range(0, len(events), batch):
        bodies = [COMPARISON.encode(e)[HEADER:] for e in events[start : start + batch]]
        warehouse.insert_avro("comparisons_in", COMPARISON.schema, bodies)


# -- the planted scenario shared by the report, gate and HTML tests ----------------------------
PLANTED_N = 2000


def _german(request: Request) -> float | None:
    return 0.5 if request.attributes["language"] == "de" else None


def planted_behaviours() -> dict[str, Behaviour]:
    """control (A/A, 2% divergence), twin (same as control), de_bug (half of German
    requests diverge), slowpoke (1.6x latency), flaky (6% errors, 5% malformed)."""
    return {
        "control": Behaviour(divergence=0.02),
        "twin": Behaviour(divergence=0.02),
        "de_bug": Behaviour(divergence=0.02, divergence_by=_german),
        "slowpoke": Behaviour(divergence=0.02, latency_factor=1.6),
        "flaky": Behaviour(divergence=0.02, error_rate=0.06, invalid_format_rate=0.05),
    }


def insert_planted(warehouse: Warehouse, n: int = PLANTED_N) -> None:
    """The planted scenario plus ``newbie`` (50 comparisons), with re-deliveries:
    500 of twin's comparisons again in a later insert, 100 of de_bug's twice in one."""
    events = generate(requests(n), planted_behaviours())
    events += generate(requests(50, seed=99), {"newbie": Behaviour()})
    insert(warehouse, events)
    twins = [e for e in events if e["challenger"] == "twin"][:500]
    insert(warehouse, [{**e, "compared_at_us": e["compared_at_us"] + 1} for e in twins])
    bugs = [e for e in events if e["challenger"] == "de_bug"][:100]
    insert(warehouse, [e for e in bugs for _ in range(2)])
