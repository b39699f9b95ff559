"""Secrets never printed: configured in every supported place, every failure path driven,
and all output, logs, /metrics, ClickHouse and the report searched for them.

The pipeline runs as a real ``shadow run`` process (its log file is what a user sees);
its HTTP challenger is a real aiohttp server on loopback that answers 401 and quotes
the request's credentials back in the body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from shadowstream.analytics.html import render_html
from shadowstream.analytics.queries import EPOCH, FAR_FUTURE, Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.pipeline.embedded import free_port
from shadowstream.pipeline.processes import ROOT, AgentProcess, settings_env
from shadowstream.producers import ShadowEmitter
from shadowstream.warehouse.client import open_warehouse
from tests.support.harness import dump_tables

N = 20
SECRETS = {
    "kafka_option": "KafkaOptPw-41d9",
    "kafka_secret": "KafkaSecretPw-77ab",
    "clickhouse_password": "ChPassword-9e0c",
    "url_password": "UrlPassword-c3f1",
    "header_env": "HeaderEnvToken-5a6b",
    "static_header": "StaticHeaderKey-0f2e",
    "redaction_key": "RedactionHashKey-88c4-0123456789",
    "cli_url_password": "CliUrlPassword-2d7e",
}
BASIC = base64.b64encode(f"bob:{SECRETS['url_password']}".encode()).decode()
BASIC_CLI = base64.b64encode(f"alice:{SECRETS['cli_url_password']}".encode()).decode()
ALL = [*SECRETS.values(), BASIC, BASIC_CLI]


class EchoingEndpoint:
    """A challenger endpoint that rejects every call and quotes its credentials back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        echo = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        return web.json_response({"error": "unauthorized", "you sent": echo}, status=401)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/answer", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> EchoingEndpoint:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def leaks(text: str) -> list[str]:
    return [secret for secret in ALL if secret in text]


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shadowstream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def endpoint() -> Iterator[EchoingEndpoint]:
    with EchoingEndpoint() as server:
        yield server


def test_secrets_in_every_place_never_reach_output_logs_metrics_or_clickhouse(
    make_settings: Any, tmp_path: Path, endpoint: EchoingEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_API_KEY", SECRETS["header_env"])
    monkeypatch.setenv("SHADOW_REDACTION_KEY", SECRETS["redaction_key"])
    settings = make_settings(
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
        clickhouse_password=SECRETS["clickhouse_password"],
        kafka_options={"ssl.key.password": SECRETS["kafka_option"], "client.id": "secrets-test"},
        kafka_secrets={"sasl.password": SECRETS["kafka_secret"]},
        redaction={"rules": [{"path": "$.customer", "action": "hash"}]},
        challengers=[
            {
                "name": "remote",
                "http": {
                    "url": f"http://bob:{SECRETS['url_password']}@127.0.0.1:{endpoint.port}/v1/answer",
                    "headers": {"X-Api-Key": SECRETS["static_header"]},
                    "headers_from_env": {"Authorization": "Bearer ${MODEL_API_KEY}"},
                },
            }
        ],
    )
    from shadowstream.pipeline.app import create_topics

    create_topics(settings)
    agent = AgentProcess(
        settings,
        ["run", "--no-create-topics"],
        tmp_path,
        "all",
        redaction_key=SECRETS["redaction_key"],  # SHADOW_REDACTION_KEY of the process
    )
    agent.start()
    try:
        agent.wait_ready()
        emitter = ShadowEmitter(
            settings.broker_url,
            service="svc",
            topic_prefix=settings.topic_prefix,
            kafka_config={"ssl.key.password": SECRETS["kafka_option"]},
            redaction=settings.redaction,
        )
        for i in range(N):
            emitter.emit_request(f"s-{i}", "/v1", {"i": i, "customer": "c-1"})
            emitter.emit_response(f"s-{i}", {"i": i}, 5.0)
        assert emitter.flush(30) == 0
        emitter.close(5)
        warehouse = open_warehouse(settings.clickhouse_url, settings.clickhouse_database)
        sql = f"SELECT count() FROM {warehouse.database}.comparisons FINAL"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (warehouse.query(sql).scalar() or 0) < N:
            time.sleep(0.5)
        metrics_text = json.dumps(agent.metrics())
        stored = dump(warehouse)
        report = build_report(
            Scope(warehouse, TimeRange(EPOCH, FAR_FUTURE), "", False),
            ReportOptions(examples_per_challenger=50),
        )
        html = render_html(report)
        errors = warehouse.query(
            f"SELECT groupUniqArray(challenger_error) FROM {warehouse.database}.comparisons FINAL"
        ).scalar()
    finally:
        agent.stop()
    log = (tmp_path / "all-1.log").read_text(errors="replace")

    assert (
        endpoint.calls >= N
        and len(errors) == 1
        and errors[0].startswith("HttpStatusError: HTTP 401")
    )
    assert "***" in errors[0]  # the quoted credentials were there, and are masked
    assert log.count("replace the configured Authorization header") == 1  # warned once
    for where, text in {
        "log": log,
        "/metrics": metrics_text,
        "clickhouse": stored,
        "report": html,
    }.items():
        assert leaks(text) == [], f"secret in {where}"

    env = settings_env(settings, redaction_key=SECRETS["redaction_key"])
    env["PYTHONPATH"] = str(ROOT)
    outputs = {"shadow config": cli(["config"], env)}
    bad_url = f"http://alice:{SECRETS['cli_url_password']}@127.0.0.1:1"
    for command in (["report"], ["gate"], ["batch", "status"]):
        outputs[" ".join(command)] = cli([*command, "--clickhouse-url", bad_url], env)
    outputs["worker sink"] = cli(
        ["--log-level", "info", "worker", "sink"], {**env, "SHADOW_CLICKHOUSE_URL": bad_url}
    )
    for name, done in outputs.items():
        assert leaks(done.stdout + done.stderr) == [], f"secret printed by {name}"
    assert outputs["shadow config"].returncode == 0
    for name in ("report", "gate", "batch status", "worker sink"):
        assert outputs[name].returncode != 0, name
        assert "http://alice:***@127.0.0.1:1" in outputs[name].stderr, name
    for name in ("report", "gate", "batch status"):  # one line, no traceback
        assert outputs[name].stderr.strip().count("\n") == 0, outputs[name].stderr


def test_sink_last_error_in_metrics_is_masked(make_settings: Any) -> None:
    """ClickHouse goes away under a running sink whose URL carries a password."""
    from confluent_kafka import Producer

    from shadowstream.pipeline.app import Pipeline, Roles, create_topics
    from shadowstream.schemas import STATS

    port = free_port()
    settings = make_settings(
        clickhouse_url=f"http://alice:{SECRETS['cli_url_password']}@127.0.0.1:{port}"
    )
    create_topics(settings)

    async def scenario() -> str:
        pipeline = Pipeline(settings, Roles(sink=True))
        sink = pipeline.services[0]
        sink.auto_migrate = False  # type: ignore[attr-defined]  # the schema "was" there
        await pipeline.start()
        try:
            producer = Producer({"bootstrap.servers": settings.broker_url.removeprefix("kafka://")})
            record = {"instance": "x", "seq": 1, "timestamp_us": 1, "stage": "router",
                      "challenger": "", "counters": {"n": 1}}  # fmt: skip
            producer.produce(f"{settings.topic_prefix}.stats", STATS.encode(record), b"k")
            producer.flush(10)
            base = f"http://127.0.0.1:{pipeline.web_port}"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                text = await asyncio.to_thread(fetch, f"{base}/metrics.json")
                if json.loads(text)["sink"]["last_error"]:
                    # the Prometheus exposition of the same moment must not leak either
                    exposition = await asyncio.to_thread(fetch, f"{base}/metrics")
                    assert leaks(exposition) == []
                    return text
                await asyncio.sleep(0.5)
            raise AssertionError("the sink never reported its insert failure")
        finally:
            await pipeline.stop()

    text = asyncio.run(scenario())
    assert leaks(text) == []
    assert "alice:***@127.0.0.1" in json.loads(text)["sink"]["last_error"]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def dump(warehouse: Any) -> str:
    """Every row of every table, through the owner endpoint (read-only)."""
    return "\n".join(dump_tables(warehouse).values()) + os.linesep
