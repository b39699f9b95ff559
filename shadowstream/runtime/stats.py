"""Periodic counter reports from agents to the stats topic (stored in ClickHouse).

Each report carries the increments since the previous one, so summing over
any time range gives the counts for that range, across restarts and
instances. A per-instance sequence number lets ClickHouse store a redelivered
report once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from shadowstream.runtime.kafka_io import OutputProducer
from shadowstream.schemas import STATS


class StatsReporter:
    def __init__(self, producer: OutputProducer, topic: str, stage: str) -> None:
        self._producer = producer
        self.topic = topic
        self.stage = stage
        self.instance = uuid.uuid4().hex[:12]
        self._seq = 0
        self._last: dict[str, dict[str, int]] = {}

    def report(self, counters_by_challenger: Mapping[str, Mapping[str, int]]) -> int:
        """Queue one event per challenger whose counters moved; returns how many."""
        sent = 0
        now = time.time_ns() // 1000
        for challenger, counters in counters_by_challenger.items():
            last = self._last.setdefault(challenger, {})
            delta = {
                k: int(v) - last.get(k, 0) for k, v in counters.items() if int(v) != last.get(k, 0)
            }
            if not delta:
                continue
            last.update({k: int(v) for k, v in counters.items()})
            self._seq += 1
            self._producer.produce(
                self.topic,
                STATS.encode(
                    {
                        "instance": self.instance,
                        "seq": self._seq,
                        "timestamp_us": now,
                        "stage": self.stage,
                        "challenger": challenger,
                        "counters": delta,
                    }
                ),
                self.instance,
            )
            sent += 1
        return sent
