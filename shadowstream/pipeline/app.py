"""Compose agents into one Faust app: a single role per process, or all of them.

Each process is a Faust worker (``faust.App``): Faust runs the agents'
lifecycle, serves the web endpoints (``/healthz``, ``/metrics`` for Prometheus,
``/metrics.json``, and the chDB owner's ``/shadow/sql``), and handles shutdown.
The data-plane agents inside are batched services (see
:mod:`shadowstream.runtime.agent`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import faust
from faust.app.base import BootStrategy
from faust.web import Request, Response, View

from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.errors import ChallengerError, ConfigError, ShadowstreamError
from shadowstream.core.kafka import (
    DEFAULT_SESSION_TIMEOUT_MS,
    EMBEDDED_CLUSTER_ID,
    EMBEDDED_SESSION_TIMEOUT_MS,
    TopicSpec,
    broker_cluster_id,
    ensure_topics,
)
from shadowstream.core.secrets import install_log_redaction, redact_strings, redact_url
from shadowstream.core.topics import TopicNames
from shadowstream.experiments import store as _experiment_store  # noqa: F401 - registers its writes
from shadowstream.pipeline.embedded import free_port
from shadowstream.pipeline.health import ProcessHealth, add_health_views
from shadowstream.pipeline.kafka_auth import faust_credentials
from shadowstream.pipeline.metrics import exposition, metrics_registry
from shadowstream.producers.redaction import build_redactor
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.broker_watch import BROKER_BACK, TOPICS_RECREATED, BrokerWatch
from shadowstream.runtime.memory import memory_snapshot
from shadowstream.schemas import default_registry
from shadowstream.schemas.codec import CODECS
from shadowstream.schemas.timestamps import EventTimeWindow
from shadowstream.schemas.topic import SchemaTopic, follow_schema_topic
from shadowstream.sinks.clickhouse.sink import ClickHouseSinkService
from shadowstream.stream_agents.challengers.base import ChallengerAdapter
from shadowstream.stream_agents.challengers.worker import ChallengerWorkerService
from shadowstream.stream_agents.comparison import build_comparison_builder
from shadowstream.stream_agents.fanout import FanOut
from shadowstream.stream_agents.judge import configured_judges
from shadowstream.stream_agents.judge.service import JudgeService
from shadowstream.stream_agents.router import RouterService
from shadowstream.warehouse.client import Warehouse, chdb_path, connect
from shadowstream.warehouse.owner import SQL_PATH, handle_sql, register_owner, unregister_owner

log = logging.getLogger(__name__)

S = TypeVar("S", bound=AgentService)


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


class Pipeline:
    """The agents of one process, hosted by one Faust app."""

    def __init__(
        self,
        settings: Settings,
        roles: Roles,
        *,
        warehouse_factory: Callable[[], Warehouse] | None = None,
        adapters: dict[str, ChallengerAdapter] | None = None,
        app_id: str | None = None,
        recreate_topics: bool = True,
    ) -> None:
        settings = with_session_timeout(settings)
        self.settings = settings
        self.roles = roles
        self.topics = TopicNames(settings.topic_prefix)
        kafka = kafka_client_config(settings)
        self.web_port = settings.web_port or free_port(settings.web_host)
        app_id = app_id or f"{settings.topic_prefix}-{roles.label()}"
        # Tables are in memory (the router keeps its own changelog), so Faust's data
        # directory holds nothing worth keeping: a temporary one instead of
        # "<app id>-data" in whatever directory the command was started from.
        self._faust_dir = tempfile.TemporaryDirectory(prefix=f"shadow-faust-{app_id}-")
        self.app = faust.App(
            app_id,
            datadir=self._faust_dir.name,
            broker=f"kafka://{kafka.bootstrap_servers}",
            # SASL / TLS of the deployment for Faust's own aiokafka connection too
            broker_credentials=faust_credentials(kafka.options),
            store="memory://",
            autodiscover=False,
            web_enabled=True,
            web_host=settings.web_host,
            web_bind=settings.web_host,
            web_port=self.web_port,
            web_in_thread=False,
            topic_replication_factor=settings.replication_factor,
            topic_partitions=settings.partitions,
            logging_config=None,
        )
        # Faust hosts the lifecycle and the web server; the agents have their own Kafka
        # clients. Faust's consumer would join a group of its own on start-up (half a
        # session timeout on Tansu) for nothing: it is not started.
        self.app.boot_strategy = BootStrategy(self.app, enable_kafka=False, enable_web=True)
        self.services: list[AgentService] = []
        self._schema_topic: SchemaTopic | None = None
        self._owner_path: Path | None = None
        self._warehouse: Warehouse | None = None
        adapters = adapters or {}
        # timestamps the warehouse keeps (older ones would vanish by TTL on insert)
        event_time = EventTimeWindow.for_retention(
            settings.retention_days, settings.max_clock_skew_seconds
        )
        # the service's redaction policy ([redaction]): storage_only rules in the router
        # and the sink, the others on challenger answers (ConfigError when invalid)
        storage_redactor = build_redactor(settings.redaction, "storage")
        answer_redactor = build_redactor(settings.redaction, "sdk")

        if roles.router:
            fanout = FanOut(
                settings.challengers,
                shadow_endpoints=settings.shadow_endpoints,
                write_endpoints=settings.write_endpoints,
            )
            self.services.append(
                RouterService(
                    kafka=kafka,
                    topics=self.topics,
                    partitions=settings.partitions,
                    fanout=fanout,
                    builder=build_comparison_builder(settings),
                    window_s=settings.join_window_seconds,
                    late_retention_s=settings.late_retention_seconds,
                    commit_interval_s=settings.commit_interval_seconds,
                    stats_interval_s=settings.stats_interval_seconds,
                    max_message_bytes=settings.max_message_bytes,
                    event_time=event_time,
                    redactor=storage_redactor,
                )
            )
        for name in roles.challengers:
            spec = settings.challenger(name)
            try:
                worker = ChallengerWorkerService(
                    kafka=kafka,
                    topics=self.topics,
                    spec=spec,
                    window_s=settings.join_window_seconds,
                    adapter=adapters.get(name),
                    commit_interval_s=settings.commit_interval_seconds,
                    stats_interval_s=settings.stats_interval_seconds,
                    max_message_bytes=settings.max_message_bytes,
                    otel_spans=settings.otel_challenger_spans,
                    redactor=answer_redactor,
                    storage_redactor=storage_redactor,
                )
            except ChallengerError as exc:  # e.g. a callable that does not import
                raise ConfigError(
                    f"challenger {name!r}: {exc} (check its callable in the configuration)"
                ) from None
            self.services.append(worker)
        if roles.sink:
            if warehouse_factory is None:
                warehouse_factory = self._default_warehouse
            self.services.append(
                ClickHouseSinkService(
                    kafka=kafka,
                    topics=self.topics,
                    warehouse_factory=warehouse_factory,
                    batch_rows=settings.sink_batch_rows,
                    batch_seconds=settings.sink_batch_seconds,
                    raw_events=settings.sink_raw_events,
                    max_message_bytes=settings.max_message_bytes,
                    retention_days=settings.retention_days,
                    event_time=event_time,
                    redactor=storage_redactor,
                )
            )
        if roles.judge:
            self.services.append(
                JudgeService(
                    kafka=kafka,
                    topics=self.topics,
                    judges=configured_judges(settings),
                    partitions=settings.partitions,
                    commit_interval_s=settings.commit_interval_seconds,
                    stats_interval_s=settings.stats_interval_seconds,
                )
            )
        if not self.services:
            raise ConfigError("nothing to run: no router, challenger or sink selected")
        if len(self.services) > 1:
            AgentService.share_process()
        session_s = (settings.kafka_session_timeout_ms or DEFAULT_SESSION_TIMEOUT_MS) / 1000
        for service in self.services:
            service.stall_timeout_s = settings.health_stall_seconds
            service.rebalance_grace_s = max(10.0, 3 * session_s)
            self.app.service(service)  # type: ignore[arg-type]
        self.watch = BrokerWatch(kafka, topic_specs(settings), create_missing=recreate_topics)
        self.watch.add_listener(self._on_broker_event)
        self.health = ProcessHealth(self.services, self.watch)
        self._add_views()

    def _on_broker_event(self, event: str) -> None:
        """From the watch's thread: the broker is back, or came back without its data."""
        for service in self.services:
            consumer = service.group_consumer()
            if consumer is None:
                continue
            consumer.verify_positions()
            if event == TOPICS_RECREATED:
                consumer.refresh_metadata()
                service.on_topics_recreated()
        if event not in (BROKER_BACK, TOPICS_RECREATED):
            log.debug("unknown broker event %s", event)

    # -- warehouse ownership --------------------------------------------------------------
    def _default_warehouse(self) -> Warehouse:
        if self._warehouse is None:
            password = self.settings.clickhouse_password
            self._warehouse = connect(
                self.settings.clickhouse_url,
                self.settings.clickhouse_database,
                password.get_secret_value() if password else None,
                lock_wait_s=60.0,  # a `shadow report` run just now may still hold the directory
            )
        return self._warehouse

    @property
    def warehouse(self) -> Warehouse:
        return self._default_warehouse()

    def _add_views(self) -> None:
        pipeline = self

        registry = metrics_registry(lambda: pipeline.services)

        class Metrics(View):
            async def get(self, request: Request) -> Response:
                body, content_type = exposition(registry, request.headers.get("Accept"))
                # the full type has parameters (version, charset): a header, not content_type
                return self.bytes(body, headers={"Content-Type": content_type})

        class MetricsJson(View):
            async def get(self, request: Request) -> Response:
                return self.json(pipeline.metrics())

        class Sql(View):
            async def post(self, request: Request) -> Response:
                owner = pipeline._owner_token
                if owner is None:
                    return self.json(
                        {"error": "this process does not own a chDB directory"}, status=404
                    )
                body = await request.read()
                status, payload = await asyncio.get_running_loop().run_in_executor(
                    None,
                    handle_sql,
                    pipeline.warehouse,
                    owner,
                    body,
                    request.headers.get("Authorization"),
                )
                return self.bytes(payload, content_type="application/json", status=status)

        add_health_views(self.app, self.health)  # /livez, /readyz, /healthz
        self.app.page("/metrics")(Metrics)  # Prometheus text format
        self.app.page("/metrics.json")(MetricsJson)  # the same figures and more, for the CLI
        self.app.page(SQL_PATH)(Sql)
        self._owner_token: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        install_log_redaction()
        log.info(
            "starting %s (broker %s, clickhouse %s, web http://%s:%s)",
            self.roles.label(),
            redact_url(self.settings.broker_url),
            redact_url(self.settings.clickhouse_url),
            self.settings.web_host,
            self.web_port,
        )
        self._schema_topic = await asyncio.get_running_loop().run_in_executor(
            None, self._follow_schemas
        )
        self.watch.start()
        await self.app.start()
        self.health.mark("faust_started")
        path = chdb_path(self.settings.clickhouse_url) if self.roles.sink else None
        if path is not None:
            # open the engine (this process owns the directory) off the event loop: the
            # web endpoints keep answering meanwhile
            await asyncio.get_running_loop().run_in_executor(None, self._default_warehouse)
            info = register_owner(
                path, f"http://{self.settings.web_host}:{self.web_port}{SQL_PATH}"
            )
            self._owner_token = info.token
            self._owner_path = path

    def _follow_schemas(self) -> SchemaTopic:
        """Publish the schemas this process writes; find unknown ones on the schema topic."""
        return follow_schema_topic(
            kafka_client_config(self.settings).base(),
            self.topics.schemas,
            default_registry(),
            [codec.schema for codec in CODECS],
            lookup_wait_s=self.settings.schema_lookup_wait_seconds,
        )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every agent has its partitions (the group joins take a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            failed = [s for s in self.services if s.failure is not None]
            if failed:
                agent = failed[0]
                raise ShadowstreamError(f"{agent.agent_name} failed to start: {agent.failure}")
            if all(s.ready.is_set() for s in self.services):
                return
            if time.monotonic() > deadline:
                waiting = [s.agent_name for s in self.services if not s.ready.is_set()]
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(waiting)}")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._owner_path is not None:
            unregister_owner(self._owner_path)
            self._owner_path = None
        await self.app.stop()
        if self._schema_topic is not None:
            default_registry().detach(self._schema_topic)
            self._schema_topic.close()
            self._schema_topic = None
        self.watch.stop()
        self._faust_dir.cleanup()

    def metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {s.agent_name: s.metrics() for s in self.services}
        if self._schema_topic is not None:
            metrics["schema_topic"] = dict(self._schema_topic.counters)
        metrics["process"] = memory_snapshot()
        redacted: dict[str, Any] = redact_strings(metrics)
        return redacted  # an error text carrying a credential stays masked

    def service(self, kind: type[S]) -> list[S]:
        return [s for s in self.services if isinstance(s, kind)]
