"""What librdkafka reports about a consumer: lag per partition, brokers reachable, group.

librdkafka emits a statistics JSON document every ``statistics.interval.ms``
(the agents' consumers ask for one every few seconds) from the consumer's own
poll call, so reading it costs the data plane nothing between reports. Each
report replaces the last :class:`ClientStatsSnapshot`; ``/metrics`` reads it.

Lag is the partition's high watermark minus the group's committed offset (the
consumer's position before its first commit), as of the last fetch. A partition whose fetching is
paused (the sink while ClickHouse is down) keeps its last known watermark.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# How often librdkafka reports (a consumer config's ``statistics.interval.ms``
# in kafka_options overrides it; 0 turns the reports, and these metrics, off).
STATISTICS_INTERVAL_MS = 5_000


@dataclass(frozen=True)
class ClientStatsSnapshot:
    reported_at: float  # epoch seconds of the report
    brokers_up: int  # distinct brokers this client has an open connection to
    lag: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition)
    assigned_partitions: int = 0
    rebalances: int = 0


def parse_client_stats(document: str, now: float | None = None) -> ClientStatsSnapshot:
    """Read one librdkafka statistics document (see librdkafka's STATISTICS.md)."""
    data: dict[str, Any] = json.loads(document)
    up = {
        str(broker.get("nodename") or name)
        for name, broker in (data.get("brokers") or {}).items()
        if broker.get("source") != "logical" and broker.get("state") == "UP"
    }
    lag: dict[tuple[str, int], int] = {}
    for topic, info in (data.get("topics") or {}).items():
        for key, part in (info.get("partitions") or {}).items():
            value = partition_lag(part)
            if int(key) >= 0 and value is not None and part.get("desired", True):
                lag[(str(topic), int(key))] = value
    group = data.get("cgrp") or {}
    return ClientStatsSnapshot(
        reported_at=float(now if now is not None else time.time()),
        brokers_up=len(up),
        lag=lag,
        assigned_partitions=int(group.get("assignment_size", 0)),
        rebalances=int(group.get("rebalance_cnt", 0)),
    )


def partition_lag(part: dict[str, Any]) -> int | None:
    """High watermark minus the committed offset; before the group's first commit on
    the partition, minus the consumer's position; None while neither is known.

    (librdkafka's own ``consumer_lag`` stays -1 until the first commit, which would
    hide a group that never gets to commit.)"""
    high = int(part.get("hi_offset", -1))
    if high < 0:
        return None
    for offset in (int(part.get("committed_offset", -1)), int(part.get("app_offset", -1))):
        if offset >= 0:
            return max(high - offset, 0)
    return 0 if high == 0 else None


class ClientStatistics:
    """The ``stats_cb`` of one consumer: keeps the latest snapshot (None before the first)."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.last: ClientStatsSnapshot | None = None

    def update(self, document: str) -> None:
        try:
            self.last = parse_client_stats(document)
        except (ValueError, TypeError, AttributeError) as exc:
            log.debug("unreadable librdkafka statistics for %s: %s", self.group_id, exc)
