"""The topics a pipeline uses (all with the configured partition count, so everything
about one request lands on the same partition number), and the Kafka session timeout."""

from __future__ import annotations

import logging

from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.kafka import (
    DEFAULT_SESSION_TIMEOUT_MS,
    EMBEDDED_CLUSTER_ID,
    EMBEDDED_SESSION_TIMEOUT_MS,
    TopicSpec,
    broker_cluster_id,
    ensure_topics,
)
from shadowstream.core.topics import TopicNames
from shadowstream.stream_agents.judge import configured_judges

log = logging.getLogger("shadowstream.pipeline.app")  # the pipeline's log, as before


def topic_specs(settings: Settings) -> list[TopicSpec]:
    topics = TopicNames(settings.topic_prefix)
    n, rf = settings.partitions, settings.replication_factor
    specs = [
        TopicSpec(name, n, rf)
        for name in topics.keyed_topics([c.name for c in settings.challengers])
    ]
    retention_ms = int(
        (settings.late_retention_seconds * 2 + settings.join_window_seconds + 3600) * 1000
    )
    specs = [
        TopicSpec(
            s.name,
            s.partitions,
            s.replication_factor,
            # markers travel many to a record: time-based retention, never compaction
            {"cleanup.policy": "delete", "retention.ms": str(retention_ms)}
            if s.name == topics.router_changelog
            else {},
        )
        for s in specs
    ]
    specs.append(TopicSpec(topics.deadletter, n, rf))
    specs.append(TopicSpec(topics.stats, n, rf))
    specs.append(TopicSpec(topics.control, 1, rf, {"cleanup.policy": "compact"}))
    specs.append(TopicSpec(topics.schemas, 1, rf, {"cleanup.policy": "compact"}))
    specs.append(TopicSpec(topics.noise, 1, rf, {"cleanup.policy": "compact"}))
    if configured_judges(settings):
        specs.append(TopicSpec(topics.judge, n, rf))
        specs.append(TopicSpec(topics.judge_cache, n, rf, {"cleanup.policy": "compact"}))
    return specs


def create_topics(settings: Settings) -> list[str]:
    return ensure_topics(kafka_client_config(settings), topic_specs(settings))


def with_session_timeout(settings: Settings) -> Settings:
    """The settings with ``kafka_session_timeout_ms`` decided: as configured, else 10 s,
    or 2 s on the embedded broker (single machine, no network to ride out; there a
    killed agent's old membership must expire before its restart can take over)."""
    if settings.kafka_session_timeout_ms is not None:
        return settings
    embedded = broker_cluster_id(kafka_client_config(settings)) == EMBEDDED_CLUSTER_ID
    value = EMBEDDED_SESSION_TIMEOUT_MS if embedded else DEFAULT_SESSION_TIMEOUT_MS
    log.info("kafka session timeout %s ms%s", value, " (embedded broker)" if embedded else "")
    return settings.model_copy(update={"kafka_session_timeout_ms": value})
