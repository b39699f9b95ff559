"""confluent-kafka client configuration and topic administration.

All producers use the ``murmur2_random`` partitioner: for a non-empty key it is
the same murmur2 hash the Java client and aiokafka/Faust use, so a request_id
lands on the same partition whoever produces it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from shadowstream.core.errors import BrokerAuthError, BrokerError
from shadowstream.core.secrets import redact_text

log = logging.getLogger(__name__)

PARTITIONER = "murmur2_random"
LIBRDKAFKA_LOG = logging.getLogger("shadowstream.librdkafka")


class RepeatFilter(logging.Filter):
    """While a broker is away, every client logs the same failed connect many times a
    second: let each message through once per ``interval_s`` (client names and numbers
    aside), saying how many were held back."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"#\w+-\d+|\d+", "#", record.getMessage())[:300]
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it held back)"
        return True


LIBRDKAFKA_LOG.addFilter(RepeatFilter())

# The embedded broker (pipeline/embedded.py) runs with this cluster id, which is how a
# process knows it may use the short session timeout (see Settings.kafka_session_timeout_ms).
EMBEDDED_CLUSTER_ID = "shadowstream-embedded"
EMBEDDED_SESSION_TIMEOUT_MS = 2_000
DEFAULT_SESSION_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class KafkaClientConfig:
    """What every client needs: where the brokers are and how to talk to them."""

    bootstrap_servers: str
    options: Mapping[str, str] = ()  # type: ignore[assignment]
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS

    def base(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            # librdkafka logs go through Python logging, not straight to stderr
            "logger": LIBRDKAFKA_LOG,
        }
        conf.update(dict(self.options))
        return conf

    def producer(self, **overrides: Any) -> dict[str, Any]:
        conf = self.base()
        conf.update(
            {
                "partitioner": PARTITIONER,
                "linger.ms": 50,  # bigger batches: far less broker work per message
                "batch.size": 1_000_000,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 500_000,
                "queue.buffering.max.kbytes": 512 * 1024,
                "enable.idempotence": False,
                "acks": "all",
                # topics come from ensure_topics with the configured partitions: a broker
                # that creates them on first use picks its own count and breaks the join
                "allow.auto.create.topics": False,
            }
        )
        conf.update(overrides)
        return conf

    def consumer(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        conf = self.base()
        conf.update(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(100, self.session_timeout_ms // 6),
                "partition.assignment.strategy": "range",
                # Each empty fetch costs the broker CPU; long-poll (data still returns at once)
                "fetch.wait.max.ms": 250,
                "queued.max.messages.kbytes": 64 * 1024,
            }
        )
        conf.update(overrides)
        return conf

    def admin(self) -> AdminClient:
        return AdminClient(self.base())

    @property
    def security_protocol(self) -> str:
        return str(dict(self.options).get("security.protocol", "PLAINTEXT")).upper()


class _Diagnosis:
    """Collects what librdkafka reports while an admin request fails, to say why in one line."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        self.lines: list[str] = []
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def error_cb(self, err: KafkaError) -> None:
        with self._lock:
            if err.code() == KafkaError._AUTHENTICATION:
                self.auth.append(err.str())
            else:
                self.lines.append(err.str())

    def log(self, level: int, msg: str, *args: Any) -> None:
        with self._lock:
            self.lines.append(msg % args if args else msg)

    def refused(self) -> bool:
        """Did the broker close a connection right after it was made (since last asked)?"""
        with self._lock:
            lines, self.lines = self.lines, []
            self.seen.extend(lines)
        return any("reset by peer" in line or "closed by peer" in line for line in lines)

    def reason(self, client: KafkaClientConfig, exc: Exception) -> BrokerError:
        where = f"Kafka at {client.bootstrap_servers}"
        with self._lock:
            auth, lines = list(self.auth), [*self.seen, *self.lines]
        if auth:
            detail = re.sub(r"^.*?SASL authentication error: ", "", auth[-1])
            detail = re.sub(r"\s*\(after \d+ms in state \w+\)", "", detail)
            user = dict(client.options).get("sasl.username", "")
            return BrokerAuthError(
                f"{where} rejected the credentials of user {user!r}: {detail} "
                "(check sasl.username, sasl.password and sasl.mechanism)"
            )
        text = " ".join(lines)
        if "SSL handshake failed" in text or ("ssl" in text.lower() and "handshake" in text):
            found = re.search(r"SSL handshake failed: ([^(]*)", text)
            why = found.group(1).strip() if found else "see the broker's certificate"
            return BrokerAuthError(f"TLS handshake with {where} failed: {why}")
        if ("connection reset by peer" in text or "connection closed by peer" in text) and (
            client.security_protocol == "PLAINTEXT"
        ):
            return BrokerAuthError(
                f"{where} closed the connection: the broker probably requires authentication "
                "or TLS (set security.protocol and sasl.* in kafka_options, the password in "
                "kafka_secrets)"
            )
        return BrokerError(f"cannot reach {where}: {redact_text(str(exc))}")


def _diagnosed_admin(client: KafkaClientConfig) -> tuple[AdminClient, _Diagnosis]:
    diagnosis = _Diagnosis()
    conf = client.base()
    conf["error_cb"] = diagnosis.error_cb
    conf["logger"] = diagnosis
    return AdminClient(conf), diagnosis


def _list_topics(client: KafkaClientConfig, timeout: float) -> tuple[AdminClient, Any]:
    """Metadata, retried until ``timeout``; an authentication failure ends it at once."""
    admin, diagnosis = _diagnosed_admin(client)
    deadline = time.monotonic() + timeout
    refused = 0
    while True:
        step = max(min(2.0, deadline - time.monotonic()), 0.1)
        try:
            return admin, admin.list_topics(timeout=step)
        except KafkaException as exc:
            admin.poll(0.2)  # serve error_cb / logger: why did it fail?
            # a plaintext client whose connections the broker keeps closing at once:
            # it wants authentication or TLS, and waiting will not change that
            refused = refused + 1 if diagnosis.refused() else 0
            if diagnosis.auth or refused >= 3 or time.monotonic() >= deadline:
                raise diagnosis.reason(client, exc) from None


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = ()  # type: ignore[assignment]


def ensure_topics(
    client: KafkaClientConfig, specs: Iterable[TopicSpec], timeout: float = 30.0
) -> list[str]:
    """Create missing topics (the embedded broker never auto-creates). Returns the created ones.

    An existing topic with a different partition count is an error: the join
    relies on every keyed topic having the same number of partitions.
    """
    specs = list(specs)
    admin, metadata = _list_topics(client, timeout)
    existing = metadata.topics
    to_create = []
    for spec in specs:
        meta = existing.get(spec.name)
        if meta is None:
            to_create.append(
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    config=dict(spec.config),
                )
            )
        elif len(meta.partitions) != spec.partitions:
            raise BrokerError(
                f"topic {spec.name} has {len(meta.partitions)} partitions, expected "
                f"{spec.partitions}: every shadow topic must have the same partition count"
            )
    created: list[str] = []
    if not to_create:
        return created
    futures = admin.create_topics(to_create, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BrokerError(f"cannot create topic {name}: {redact_text(str(exc))}") from None
    if created:
        log.info("created topics: %s", ", ".join(sorted(created)))
    return created


def broker_cluster_id(client: KafkaClientConfig, timeout: float = 5.0) -> str | None:
    """The cluster id the broker reports, or None if it does not answer in time."""
    try:
        return client.admin().list_topics(timeout=timeout).cluster_id
    except KafkaException:
        return None


def wait_for_broker(client: KafkaClientConfig, timeout: float = 30.0) -> None:
    """Block until the broker answers a metadata request (one-line BrokerError if not).

    Wrong or missing credentials end the wait at once with a BrokerAuthError
    that says so.
    """
    _list_topics(client, timeout)


def list_topic_names(client: KafkaClientConfig, timeout: float = 30.0) -> set[str]:
    """The broker's topics; a one-line BrokerError (BrokerAuthError: credentials) if not."""
    return set(_list_topics(client, timeout)[1].topics)
