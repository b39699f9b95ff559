"""The router's numbers: increments for the stats topic (summed in ClickHouse) and the
snapshot ``/metrics`` shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shadowstream.runtime.kafka_io import DeadLetters
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.guards import Emitted
from shadowstream.stream_agents.join import JoinEngine

Engines = Mapping[int, JoinEngine[Emitted]]


def join_totals(engines: Engines) -> dict[str, int]:
    """The join outcomes of every partition's engine, summed."""
    join: dict[str, int] = {}
    for engine in engines.values():
        for key, value in engine.stats.as_dict().items():
            join[key] = join.get(key, 0) + value
    return join


def stats_increments(
    fanout: FanOut, engines: Engines, deadletters: DeadLetters
) -> dict[str, dict[str, int]]:
    """Fan-out decisions per challenger, and (under "") join outcomes and dead letters."""
    per_challenger: dict[str, dict[str, int]] = {
        name: dict(vars(c)) for name, c in fanout.counters.items()
    }
    join = join_totals(engines)
    for reason, n in deadletters.counter.by_reason.items():
        join[f"deadletter_{reason}"] = n
    per_challenger[""] = join
    return per_challenger


def engine_gauges(engines: Engines) -> dict[str, Any]:
    """Partitions, open requests, markers and held events of a snapshot of the engines."""
    return {
        "partitions": sorted(engines),
        "open_requests": sum(e.open_entries for e in engines.values()),
        "markers": sum(e.markers for e in engines.values()),
        "held_events": sum(e.held_events() for e in engines.values()),
        "join": join_totals(engines),
    }
