"""``/metrics``: the agents of one process in the Prometheus exposition format.

Nothing on the data plane changes for it: at each scrape, a prometheus-client
collector reads what the agents already keep (their ``counters``, the gauges in
their ``metrics()``, librdkafka's statistics of their consumers, the sink's
insert histogram) and turns it into metric families named by Prometheus
conventions (``shadowstream_`` prefix, base units, ``_total`` on counters).
The same figures stay available as JSON at ``/metrics.json``.

The metric reference is docs/operations.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from shadowstream import __version__
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.kafka_io import BatchConsumer
from shadowstream.runtime.memory import MB, memory_snapshot
from shadowstream.sinks.clickhouse.sink import ClickHouseSinkService
from shadowstream.stream_agents.challengers.worker import ChallengerWorkerService
from shadowstream.stream_agents.router import RouterService

log = logging.getLogger(__name__)

P = "shadowstream_"

# agent counter key -> (metric name without prefix and _total, help, {label: value})
ROUTER_COUNTERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "consumed": ("router_consumed_messages", "Messages consumed (requests, responses).", {}),
    "fanned_out": ("router_fanned_out_requests", "Requests sent to challenger topics.", {}),
    "comparisons": ("router_comparisons", "Comparisons emitted by the join.", {}),
    "commits": ("router_commits", "Offset commits.", {}),
    "restored_markers": ("router_restored_markers", "Markers restored from the changelog.", {}),
    "replayed_tool_traces": (
        "router_replayed_tool_traces",
        "Requests sent with the champion's tool trace.",
        {},
    ),
}
WORKER_COUNTERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "received": ("challenger_requests_received", "Requests received by the worker.", {}),
    "ok": ("challenger_responses", "Challenger answers by status.", {"status": "ok"}),
    "error": ("challenger_responses", "Challenger answers by status.", {"status": "error"}),
    "timeout": ("challenger_responses", "Challenger answers by status.", {"status": "timeout"}),
    "skipped_stale": (
        "challenger_requests_skipped",
        "Requests not called, by reason.",
        {"reason": "stale"},
    ),
    "skipped_cancelled": (
        "challenger_requests_skipped",
        "Requests not called, by reason.",
        {"reason": "cancelled"},
    ),
    "commits": ("challenger_commits", "Offset commits.", {}),
    "replayed_tool_traces": (
        "challenger_replayed_tool_traces",
        "Requests that came with the champion's tool trace.",
        {},
    ),
}
SINK_COUNTERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "batches": ("sink_batches", "Batches stored in ClickHouse.", {}),
    "insert_failures": ("sink_insert_failures", "Failed inserts (each is retried).", {}),
    "reencoded": ("sink_reencoded_events", "Events re-encoded from an older schema.", {}),
}
SINK_TABLE_PREFIXES = {
    "inserted_": ("sink_inserted_rows", "Rows inserted into ClickHouse, by table.", 1.0),
    "insert_ms_": (None, "", 0.0),  # the insert duration histogram has these
}
SINK_SECONDS = {"commit_ms": ("sink_commit_seconds", "Time spent committing offsets.")}


class _Families:
    """The metric families of one scrape, created on first use."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def _get(self, kind: Any, name: str, doc: str, labels: Sequence[str]) -> Any:
        family = self._families.get(name)
        if family is None:
            family = kind(P + name, doc, labels=list(labels))
            self._families[name] = family
        return family

    def counter(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        self._get(CounterMetricFamily, name, doc, list(labels)).add_metric(
            list(labels.values()), value
        )

    def gauge(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        self._get(GaugeMetricFamily, name, doc, list(labels)).add_metric(
            list(labels.values()), value
        )

    def summary(
        self, name: str, doc: str, labels: dict[str, str], count: int, total: float
    ) -> None:
        self._get(SummaryMetricFamily, name, doc, list(labels)).add_metric(
            list(labels.values()), count, total
        )

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


class _Monotonic:
    """Counters never go down within a process, even when an agent's figure does
    (the router's join counts of a partition leave with the partition)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}
        self._offset: dict[tuple[str, tuple[str, ...]], float] = {}

    def __call__(self, name: str, labels: dict[str, str], value: float) -> float:
        key = (name, tuple(labels.values()))
        last = self._last.get(key)
        if last is not None and value < last:
            self._offset[key] = self._offset.get(key, 0.0) + last - value
        self._last[key] = value
        return value + self._offset.get(key, 0.0)


def _metric_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_").lower() or "unnamed"


class PipelineCollector(Collector):
    """A prometheus-client collector over the agents of one process."""

    def __init__(self, services: Callable[[], Sequence[AgentService]]) -> None:
        self._services = services
        self._monotonic = _Monotonic()

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        families.gauge("build_info", "Shadowstream version.", {"version": __version__}, 1)
        for service in self._services():
            self._collect_agent(families, service)
        _memory(families)
        yield from families
        for service in self._services():
            if isinstance(service, ClickHouseSinkService):
                yield from service.insert_seconds.collect()

    def _collect_agent(self, families: _Families, service: AgentService) -> None:
        agent = service.agent_name
        labels = {"agent": agent}
        families.gauge(
            "agent_ready",
            "1 once the agent has its partitions and consumes.",
            labels,
            1.0 if service.ready.is_set() else 0.0,
        )
        families.gauge(
            "agent_failed", "1 after the agent crashed.", labels, float(service.failure is not None)
        )
        try:
            details = service.metrics()
        except Exception as exc:  # an agent still starting may not have its clients yet
            log.debug("no metrics from %s yet: %s", agent, exc)
            details = {}
        counters: dict[str, int] = dict(getattr(service, "counters", {}) or {})
        if isinstance(service, RouterService):
            self._router(families, counters, details)
        elif isinstance(service, ChallengerWorkerService):
            self._worker(families, service, counters, details)
        elif isinstance(service, ClickHouseSinkService):
            self._sink(families, counters, details)
        for reason, count in sorted((details.get("deadletters") or {}).items()):
            self._counter(
                families,
                "deadletters",
                "Messages sent to the dead-letter topic, by reason.",
                {**labels, "reason": str(reason)},
                count,
            )
        consumer = getattr(service, "consumer", None)  # every batched agent's consumer
        if isinstance(consumer, BatchConsumer):
            _kafka(families, agent, consumer)

    def _counter(
        self, families: _Families, name: str, doc: str, labels: dict[str, str], value: float
    ) -> None:
        families.counter(name, doc, labels, self._monotonic(name, labels, float(value)))

    def _mapped_counters(
        self,
        families: _Families,
        kind: str,
        counters: dict[str, int],
        mapping: dict[str, tuple[str, str, dict[str, str]]],
        labels: dict[str, str],
    ) -> None:
        for key, value in counters.items():
            name, doc, extra = mapping.get(
                key, (f"{kind}_{_metric_key(key)}", f"The {kind}'s {key} count.", {})
            )
            self._counter(families, name, doc, {**labels, **extra}, value)

    def _router(
        self, families: _Families, counters: dict[str, int], details: dict[str, Any]
    ) -> None:
        self._mapped_counters(families, "router", counters, ROUTER_COUNTERS, {})
        gauges = {
            "open_requests": ("router_open_requests", "Requests waiting for a side."),
            "markers": ("router_closed_request_markers", "Markers of closed requests kept."),
            "held_events": ("router_held_events", "Events held by open requests."),
        }
        for key, (name, doc) in gauges.items():
            if key in details:
                families.gauge(name, doc, {}, float(details[key]))
        if "partitions" in details:
            families.gauge(
                "router_assigned_partitions",
                "Partitions this router joins.",
                {},
                float(len(details["partitions"])),
            )
        for event, count in (details.get("join") or {}).items():
            self._counter(
                families,
                "router_join_events",
                "Join events by kind (requests, responses, duplicates, late, orphans, ...).",
                {"event": str(event)},
                count,
            )
        for key, value in (details.get("comparison") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._counter(
                    families,
                    "router_comparator_results",
                    "Comparator outcomes (compared, identical bytes, noise filtered, errors, ...).",
                    {"result": str(key)},
                    value,
                )
        for challenger, decisions in (details.get("fanout") or {}).items():
            for decision, count in decisions.items():
                self._counter(
                    families,
                    "router_fanout_decisions",
                    "Fan-out decisions per challenger: sampled or why not.",
                    {"challenger": str(challenger), "decision": str(decision)},
                    count,
                )

    def _worker(
        self,
        families: _Families,
        service: ChallengerWorkerService,
        counters: dict[str, int],
        details: dict[str, Any],
    ) -> None:
        labels = {"challenger": service.spec.name}
        self._mapped_counters(families, "challenger", counters, WORKER_COUNTERS, labels)
        if "in_flight" in details:
            families.gauge(
                "challenger_calls_in_flight",
                "Challenger calls running now.",
                labels,
                float(details["in_flight"]),
            )
        answered = sum(counters.get(k, 0) for k in ("ok", "error", "timeout"))
        families.summary(
            "challenger_call_duration_seconds",
            "Time per challenger call (every status), as the worker measured it.",
            labels,
            answered,
            float(getattr(service, "latency_ms_total", 0.0)) / 1000,
        )

    def _sink(self, families: _Families, counters: dict[str, int], details: dict[str, Any]) -> None:
        for key, value in counters.items():
            table_prefix = next((p for p in SINK_TABLE_PREFIXES if key.startswith(p)), None)
            if table_prefix is not None:
                name, doc, scale = SINK_TABLE_PREFIXES[table_prefix]
                if name is not None:
                    table = {"table": key[len(table_prefix) :]}
                    self._counter(families, name, doc, table, value * scale)
            elif key in SINK_SECONDS:
                name, doc = SINK_SECONDS[key]
                self._counter(families, name, doc, {}, value / 1000)
            else:
                name, doc, extra = SINK_COUNTERS.get(
                    key, (f"sink_{_metric_key(key)}", f"The sink's {key} count.", {})
                )
                self._counter(families, name, doc, extra, value)
        if "pending_rows" in details:
            families.gauge(
                "sink_pending_rows",
                "Rows consumed and not yet stored.",
                {},
                float(details["pending_rows"]),
            )
        if "paused" in details:
            families.gauge(
                "sink_consumption_paused",
                "1 while ClickHouse is failing and consumption waits for it.",
                {},
                float(bool(details["paused"])),
            )


def _kafka(families: _Families, agent: str, consumer: BatchConsumer) -> None:
    snapshot = consumer.statistics.last
    if snapshot is None:
        return
    labels = {"agent": agent, "group": consumer.statistics.group_id}
    families.gauge(
        "kafka_brokers_up",
        "Brokers the agent's consumer is connected to (librdkafka state UP).",
        labels,
        snapshot.brokers_up,
    )
    families.gauge(
        "kafka_consumer_assigned_partitions",
        "Partitions assigned to the consumer.",
        labels,
        snapshot.assigned_partitions,
    )
    families.counter(
        "kafka_consumer_rebalances",
        "Consumer group rebalances seen by the consumer.",
        labels,
        snapshot.rebalances,
    )
    families.gauge(
        "kafka_statistics_timestamp_seconds",
        "When librdkafka last reported these statistics.",
        labels,
        snapshot.reported_at,
    )
    for (topic, partition), lag in sorted(snapshot.lag.items()):
        families.gauge(
            "kafka_consumer_lag_messages",
            "High watermark minus the group's committed offset, per partition.",
            {**labels, "topic": topic, "partition": str(partition)},
            lag,
        )


def _memory(families: _Families) -> None:
    memory = memory_snapshot()
    families.gauge(
        "process_python_blocks",
        "Live Python memory blocks (sys.getallocatedblocks).",
        {},
        memory["python_blocks"],
    )
    if "heap_in_use_mb" in memory:
        families.gauge(
            "process_heap_in_use_bytes",
            "C heap in use (glibc mallinfo2).",
            {},
            memory["heap_in_use_mb"] * MB,
        )
        families.gauge(
            "process_heap_free_bytes",
            "Freed C heap the process still holds.",
            {},
            memory["heap_free_mb"] * MB,
        )


def metrics_registry(services: Callable[[], Sequence[AgentService]]) -> CollectorRegistry:
    """A registry of one process: its agents, plus the client library's process,
    platform and garbage-collector metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(services))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
