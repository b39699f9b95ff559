"""The Faust app that hosts one process's agents: its configuration, and the web
endpoints it serves (``/livez``, ``/readyz``, ``/healthz``, ``/metrics`` for
Prometheus, ``/metrics.json``, and the chDB owner's ``/shadow/sql``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import faust
from faust.app.base import BootStrategy
from faust.web import Request, Response, View

from shadowstream.core.config import Settings
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.pipeline.health import ProcessHealth, add_health_views
from shadowstream.pipeline.kafka_auth import faust_credentials
from shadowstream.pipeline.metrics import exposition, metrics_registry
from shadowstream.runtime.agent import AgentService
from shadowstream.warehouse.client import Warehouse
from shadowstream.warehouse.owner import SQL_PATH, handle_sql


class HostedPipeline(Protocol):
    """What the endpoints read of the pipeline they serve."""

    @property
    def services(self) -> Sequence[AgentService]: ...

    @property
    def owner_token(self) -> str | None:  # set once the process owns a chDB directory
        ...

    @property
    def health(self) -> ProcessHealth: ...

    @property
    def warehouse(self) -> Warehouse: ...

    def metrics(self) -> dict[str, Any]: ...


def faust_app(
    settings: Settings, app_id: str, datadir: str, kafka: KafkaClientConfig, web_port: int
) -> faust.App:
    """The app: lifecycle and web server only. The agents have their own Kafka clients;
    Faust's consumer would join a group of its own on start-up (half a session timeout on
    Tansu) for nothing, so it is not started."""
    app = faust.App(
        app_id,
        datadir=datadir,
        broker=f"kafka://{kafka.bootstrap_servers}",
        # SASL / TLS of the deployment for Faust's own aiokafka connection too
        broker_credentials=faust_credentials(kafka.options),
        store="memory://",
        autodiscover=False,
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=web_port,
        web_in_thread=False,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.partitions,
        logging_config=None,
    )
    app.boot_strategy = BootStrategy(app, enable_kafka=False, enable_web=True)
    return app


def add_pipeline_views(app: faust.App, pipeline: HostedPipeline) -> None:
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
            owner = pipeline.owner_token
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

    add_health_views(app, pipeline.health)  # /livez, /readyz, /healthz
    app.page("/metrics")(Metrics)  # Prometheus text format
    app.page("/metrics.json")(MetricsJson)  # the same figures and more, for the CLI
    app.page(SQL_PATH)(Sql)
