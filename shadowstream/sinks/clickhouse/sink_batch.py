"""What the sink stores: the kinds of events it reads (topic -> table), the batch being
filled, and the counters and histogram it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message
from prometheus_client import Histogram

from shadowstream.core.topics import TopicNames
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE, STATS, EventCodec

INSERT_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# comparisons first: they are what users wait for
INSERT_ORDER = ["comparisons", "responses", "requests", "batch_requests", "stats"]
RAW_KINDS = frozenset({"requests", "batch_requests", "responses"})


@dataclass
class SinkKind:
    name: str
    table: str
    codec: EventCodec[Any]
    keyed: bool = True  # events keyed by request_id (stats events are not)
    timestamped: bool = False  # raw events: timestamp_us right after request_id, checked


@dataclass
class SinkBatch:
    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    sources: dict[str, list[Message]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    rows: int = 0
    started: float = 0.0
    inserted: set[str] = field(default_factory=set)
    # rows set aside while storing (source, reason, detail): dead-lettered by the loop
    rejected: list[tuple[Message, str, str]] = field(default_factory=list)

    def add(self, kind: str, body: bytes, source: Message) -> None:
        self.bodies.setdefault(kind, []).append(body)
        self.sources.setdefault(kind, []).append(source)
        self.rows += 1


def sink_kinds(topics: TopicNames, raw_events: bool) -> dict[str, SinkKind]:
    """Topic -> kind: comparisons and stats, and with ``raw_events`` the raw events too."""
    kinds = {
        topics.comparisons: SinkKind("comparisons", "comparisons_in", COMPARISON),
        topics.stats: SinkKind("stats", "stats_in", STATS, keyed=False),
    }
    if raw_events:
        kinds[topics.requests] = SinkKind("requests", "requests_in", REQUEST, True, True)
        # batch experiments' requests are stored too (keyed by experiment and id)
        kinds[topics.batch_requests] = SinkKind(
            "batch_requests", "requests_in", REQUEST, True, True
        )
        kinds[topics.responses] = SinkKind("responses", "responses_in", RESPONSE, True, True)
    return kinds


def sink_counters() -> dict[str, int]:
    return {
        "inserted_comparisons": 0,
        "inserted_requests": 0,
        "inserted_batch_requests": 0,
        "inserted_responses": 0,
        "inserted_stats": 0,
        "batches": 0,
        # wall time spent storing (inserts by kind) and committing, in ms
        "insert_ms_comparisons": 0,
        "insert_ms_requests": 0,
        "insert_ms_batch_requests": 0,
        "insert_ms_responses": 0,
        "insert_ms_stats": 0,
        "commit_ms": 0,
        "insert_failures": 0,
        "reencoded": 0,
        # batches ClickHouse refused for some of their rows, the inserts it took to
        # find them, and the rows set aside (dead-lettered)
        "isolated_batches": 0,
        "isolation_inserts": 0,
        "rejected_rows": 0,
    }


def insert_histogram() -> Histogram:
    """Seconds per INSERT by table, for /metrics (not registered anywhere: the process's
    collector exports it)."""
    return Histogram(
        "shadowstream_sink_insert_duration_seconds",
        "Time per ClickHouse INSERT, by table.",
        ["table"],
        registry=None,
        buckets=INSERT_SECONDS_BUCKETS,
    )
