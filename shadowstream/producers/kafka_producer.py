"""The SDK's librdkafka producer: settings for the request path, and a quiet logger."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message

from shadowstream.core.secrets import redact_text


def bootstrap_address(broker_url: str) -> str:
    """``kafka://a:9092,b:9092`` -> ``a:9092,b:9092`` (not validated: the SDK never raises)."""
    url = broker_url
    for scheme in ("kafka://", "tcp://", "plaintext://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
    return url.rstrip("/")


class QuietLog:
    """librdkafka's logger for the SDK: at most one line per kind of message per minute.

    With the broker down, librdkafka reports every reconnect attempt; a
    production service must not drown in them.
    """

    def __init__(self, logger: logging.Logger, every_s: float = 60.0) -> None:
        self._logger = logger
        self._every_s = every_s
        self._last: dict[str, float] = {}

    def log(self, level: int, msg: str, *args: Any) -> None:
        text = msg % args if args else msg
        kind = text.split(":", 1)[0][:60]
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) >= self._every_s:
            if len(self._last) > 1000:
                self._last.clear()
            self._last[kind] = now
            self._logger.log(level, redact_text(text))


def producer_config(
    broker_url: str,
    *,
    queue_max_messages: int,
    message_timeout_ms: int,
    on_error: Callable[[KafkaError], None],
    on_delivery: Callable[[KafkaError | None, Message], None],
    kafka_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """librdkafka settings for a producer on a service's request path; ``kafka_config``
    (SASL, TLS, ...) is applied last."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_address(broker_url),
        "partitioner": "murmur2_random",  # same partition as Java/aiokafka/Faust
        "linger.ms": 50,  # off the request path; fewer, bigger batches for the broker
        "queue.buffering.max.messages": queue_max_messages,
        "queue.buffering.max.kbytes": 256 * 1024,
        "message.timeout.ms": message_timeout_ms,
        "socket.timeout.ms": min(message_timeout_ms, 10_000),
        "acks": 1,
        "enable.idempotence": False,
        "error_cb": on_error,
        "logger": QuietLog(logging.getLogger("shadowstream.librdkafka.emitter")),
        "on_delivery": on_delivery,
        # a Python callback per delivered event would contend for the GIL with
        # the service's own threads; only failures call back
        "delivery.report.only.error": True,
    }
    if kafka_config:
        conf.update(kafka_config)
    return conf
