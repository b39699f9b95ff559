"""The agents one process runs: its roles, and each agent built from the settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shadowstream.core.config import Settings
from shadowstream.core.errors import ChallengerError, ConfigError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.producers.redaction import Redactor, build_redactor
from shadowstream.runtime.agent import AgentService
from shadowstream.schemas.timestamps import EventTimeWindow
from shadowstream.sinks.clickhouse.sink import ClickHouseSinkService
from shadowstream.stream_agents.challengers.base import ChallengerAdapter
from shadowstream.stream_agents.challengers.worker import ChallengerWorkerService
from shadowstream.stream_agents.comparison import build_comparison_builder
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.judge import configured_judges
from shadowstream.stream_agents.judge.service import JudgeService
from shadowstream.stream_agents.router import RouterService
from shadowstream.warehouse.client import Warehouse


@dataclass
class Roles:
    router: bool = False
    challengers: list[str] = field(default_factory=list)
    sink: bool = False
    judge: bool = False  # the LLM judge agent (when a challenger's comparator has a judge)

    @classmethod
    def everything(cls, settings: Settings) -> Roles:
        live = [c.name for c in settings.challengers if c.live]  # batch-only: no worker
        judge = bool(configured_judges(settings))
        return cls(router=True, challengers=live, sink=True, judge=judge)

    def label(self) -> str:
        parts = []
        if self.router:
            parts.append("router")
        parts += [f"challenger-{n}" for n in self.challengers]
        if self.sink:
            parts.append("sink")
        if self.judge:
            parts.append("judge")
        return "+".join(parts) if len(parts) < 3 else "all"


@dataclass(frozen=True)
class ServiceContext:
    """What every agent of the process shares."""

    settings: Settings
    kafka: KafkaClientConfig
    topics: TopicNames
    # timestamps the warehouse keeps (older ones would vanish by TTL on insert)
    event_time: EventTimeWindow
    # the service's redaction policy ([redaction]): storage_only rules in the router
    # and the sink, the others on challenger answers
    storage_redactor: Redactor | None
    answer_redactor: Redactor | None


def build_services(
    settings: Settings,
    roles: Roles,
    kafka: KafkaClientConfig,
    topics: TopicNames,
    warehouse_factory: Callable[[], Warehouse],
    adapters: Mapping[str, ChallengerAdapter],
) -> list[AgentService]:
    """The agents of ``roles``; ConfigError when there is none, or the redaction policy
    or a challenger's callable is invalid."""
    context = ServiceContext(
        settings,
        kafka,
        topics,
        EventTimeWindow.for_retention(settings.retention_days, settings.max_clock_skew_seconds),
        build_redactor(settings.redaction, "storage"),
        build_redactor(settings.redaction, "sdk"),
    )
    services: list[AgentService] = []
    if roles.router:
        services.append(router_service(context))
    services += [
        challenger_service(context, name, adapters.get(name)) for name in roles.challengers
    ]
    if roles.sink:
        services.append(sink_service(context, warehouse_factory))
    if roles.judge:
        services.append(judge_service(context))
    if not services:
        raise ConfigError("nothing to run: no router, challenger or sink selected")
    return services


def router_service(context: ServiceContext) -> RouterService:
    settings = context.settings
    fanout = FanOut(
        settings.challengers,
        shadow_endpoints=settings.shadow_endpoints,
        write_endpoints=settings.write_endpoints,
    )
    return RouterService(
        kafka=context.kafka,
        topics=context.topics,
        partitions=settings.partitions,
        fanout=fanout,
        builder=build_comparison_builder(settings),
        window_s=settings.join_window_seconds,
        late_retention_s=settings.late_retention_seconds,
        commit_interval_s=settings.commit_interval_seconds,
        stats_interval_s=settings.stats_interval_seconds,
        max_message_bytes=settings.max_message_bytes,
        event_time=context.event_time,
        redactor=context.storage_redactor,
    )


def challenger_service(
    context: ServiceContext, name: str, adapter: ChallengerAdapter | None
) -> ChallengerWorkerService:
    settings = context.settings
    spec = settings.challenger(name)
    try:
        return ChallengerWorkerService(
            kafka=context.kafka,
            topics=context.topics,
            spec=spec,
            window_s=settings.join_window_seconds,
            adapter=adapter,
            commit_interval_s=settings.commit_interval_seconds,
            stats_interval_s=settings.stats_interval_seconds,
            max_message_bytes=settings.max_message_bytes,
            otel_spans=settings.otel_challenger_spans,
            redactor=context.answer_redactor,
            storage_redactor=context.storage_redactor,
        )
    except ChallengerError as exc:  # e.g. a callable that does not import
        raise ConfigError(
            f"challenger {name!r}: {exc} (check its callable in the configuration)"
        ) from None


def sink_service(
    context: ServiceContext, warehouse_factory: Callable[[], Warehouse]
) -> ClickHouseSinkService:
    settings = context.settings
    return ClickHouseSinkService(
        kafka=context.kafka,
        topics=context.topics,
        warehouse_factory=warehouse_factory,
        batch_rows=settings.sink_batch_rows,
        batch_seconds=settings.sink_batch_seconds,
        raw_events=settings.sink_raw_events,
        max_message_bytes=settings.max_message_bytes,
        retention_days=settings.retention_days,
        event_time=context.event_time,
        redactor=context.storage_redactor,
    )


def judge_service(context: ServiceContext) -> JudgeService:
    settings = context.settings
    return JudgeService(
        kafka=context.kafka,
        topics=context.topics,
        judges=configured_judges(settings),
        partitions=settings.partitions,
        commit_interval_s=settings.commit_interval_seconds,
        stats_interval_s=settings.stats_interval_seconds,
    )
