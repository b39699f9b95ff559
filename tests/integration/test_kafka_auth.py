"""Authenticated Kafka: SASL options reach every client, and wrong or missing credentials end
in one clear line, against the embedded broker with authentication on (Tansu --authentication).

Tansu 0.6.0 cannot hold a user while authentication is on (users live in memory and
``tansu user create`` speaks plaintext, which such a broker refuses), so the successful
path cannot run against it; what these tests show on the real broker is that every
client speaks SASL when configured to, and what a user sees when the broker says no.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shadowstream.pipeline.embedded import EmbeddedBroker
from shadowstream.pipeline.processes import ROOT

WRONG_PASSWORD = "wrong-pw-Zq81xK"
SASL = {
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "alice",
}


@pytest.fixture(scope="module")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log_file = tmp_path_factory.mktemp("auth-broker") / "broker.log"
    with EmbeddedBroker(log_file=log_file, authentication=True) as broker:
        yield broker


def shadow(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SHADOW_")}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "shadowstream.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_missing_and_wrong_credentials_are_one_line_errors(
    auth_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    base = {
        "SHADOW_BROKER_URL": auth_broker.url,
        "SHADOW_CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
        "SHADOW_TOPIC_PREFIX": "auth",
    }
    missing = shadow(["worker", "router"], base)
    assert missing.returncode == 3, missing.stderr
    lines = [line for line in missing.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: Kafka at 127.0.0.1:")
    assert "closed the connection: the broker probably requires authentication" in lines[-1]
    assert "Traceback" not in missing.stderr

    wrong_env = {
        **base,
        "SHADOW_KAFKA_OPTIONS": json.dumps(SASL),
        "SHADOW_KAFKA_SECRETS": json.dumps({"sasl.password": WRONG_PASSWORD}),
    }
    for command in (["worker", "sink"], ["topics", "create"]):
        wrong = shadow(command, wrong_env)
        assert wrong.returncode == 3, wrong.stderr
        last = [line for line in wrong.stderr.splitlines() if line.strip()][-1]
        assert "rejected the credentials of user 'alice'" in last
        assert "Traceback" not in wrong.stderr
        assert WRONG_PASSWORD not in wrong.stderr + wrong.stdout


def test_every_client_speaks_sasl_when_configured(
    auth_broker: EmbeddedBroker, make_settings: Any
) -> None:
    """librdkafka (agents, admin, SDK) and Faust's aiokafka all attempt SCRAM; none falls
    back to plaintext. The broker rejects the unknown user in each case."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from shadowstream.core.config import kafka_client_config
    from shadowstream.core.errors import BrokerAuthError
    from shadowstream.core.kafka import wait_for_broker
    from shadowstream.pipeline.app import Pipeline, Roles
    from shadowstream.producers import ShadowEmitter

    settings = make_settings(
        broker_url=auth_broker.url,
        kafka_options=SASL,
        kafka_secrets={"sasl.password": WRONG_PASSWORD},
        challengers=[{"name": "same", "callable": "tests.support.models:same"}],
    )
    kafka = kafka_client_config(settings)
    with pytest.raises(BrokerAuthError, match="rejected the credentials"):
        wait_for_broker(kafka, timeout=20)

    # the agents' consumers and producers: the same options, merged with the secrets
    assert kafka.consumer("g")["sasl.password"] == WRONG_PASSWORD
    assert kafka.producer()["security.protocol"] == "SASL_PLAINTEXT"

    # Faust's own connection: SCRAM credentials, not the bare broker URL
    pipeline = Pipeline(settings, Roles(router=True))
    credentials = pipeline.app.conf.broker_credentials
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.username == "alice"

    async def aiokafka_start(auth: dict[str, Any]) -> BaseException | None:
        producer = AIOKafkaProducer(
            bootstrap_servers=auth_broker.bootstrap_servers, request_timeout_ms=5000, **auth
        )
        try:
            await asyncio.wait_for(producer.start(), 30)
        except BaseException as exc:
            return exc
        finally:
            await producer.stop()
        return None

    plaintext = asyncio.run(aiokafka_start({"security_protocol": "PLAINTEXT"}))
    assert isinstance(plaintext, KafkaConnectionError)  # refused before any SASL
    sasl = asyncio.run(aiokafka_start(credentials_to_aiokafka_auth(credentials)))
    assert sasl is not None and not isinstance(sasl, KafkaConnectionError)

    # the SDK: never raises, never blocks, counts what it could not deliver
    emitter = ShadowEmitter(
        auth_broker.url,
        service="svc",
        topic_prefix=settings.topic_prefix,
        message_timeout_ms=3000,
        kafka_config=dict(kafka.options),
    )
    started = time.perf_counter()
    for i in range(50):
        emitter.emit_request(f"r{i}", "/x", {"i": i})
    assert time.perf_counter() - started < 1.0
    emitter.close(10)
    stats = emitter.stats()
    assert stats.delivered == 0 and stats.dropped == 50
