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
from pathlib import Path
from typing import Any, TypeVar

from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.errors import ShadowstreamError
from shadowstream.core.kafka import (
    DEFAULT_SESSION_TIMEOUT_MS,
)
from shadowstream.core.secrets import install_log_redaction, redact_strings, redact_url
from shadowstream.core.topics import TopicNames
from shadowstream.experiments import store as _experiment_store  # noqa: F401 - registers its writes
from shadowstream.pipeline.embedded import free_port
from shadowstream.pipeline.faust_host import add_pipeline_views, faust_app
from shadowstream.pipeline.health import ProcessHealth
from shadowstream.pipeline.services import Roles, build_services
from shadowstream.pipeline.topic_plan import create_topics, topic_specs, with_session_timeout
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.broker_watch import BROKER_BACK, TOPICS_RECREATED, BrokerWatch
from shadowstream.runtime.memory import memory_snapshot
from shadowstream.schemas import default_registry
from shadowstream.schemas.codec import CODECS
from shadowstream.schemas.topic import SchemaTopic, follow_schema_topic
from shadowstream.stream_agents.challengers.base import ChallengerAdapter
from shadowstream.warehouse.client import Warehouse, chdb_path, connect
from shadowstream.warehouse.owner import SQL_PATH, register_owner, unregister_owner

log = logging.getLogger(__name__)

# what was imported from here before the split
__all__ = ["Pipeline", "Roles", "create_topics", "topic_specs", "with_session_timeout"]

S = TypeVar("S", bound=AgentService)


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
        self.app = faust_app(settings, app_id, self._faust_dir.name, kafka, self.web_port)
        self._schema_topic: SchemaTopic | None = None
        self._owner_path: Path | None = None
        self._warehouse: Warehouse | None = None
        self.owner_token: str | None = None  # set once this process owns a chDB directory
        self.services = build_services(
            settings,
            roles,
            kafka,
            self.topics,
            warehouse_factory or self._default_warehouse,
            adapters or {},
        )
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
        add_pipeline_views(self.app, self)

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
            self.owner_token = info.token
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
