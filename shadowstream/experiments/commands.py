"""Publishing commands on the control topic (format: :mod:`shadowstream.schemas.wire`).

Every router and challenger worker follows the control topic from its
beginning, so a command reaches all of them.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from shadowstream.core.errors import BrokerError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.schemas.wire import encode_command


def publish_command(kafka: KafkaClientConfig, topic: str, command: dict[str, Any]) -> None:
    """Write one control command and wait until the broker acknowledged it."""
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(kafka.producer(**{"message.timeout.ms": 15_000}))
    producer.produce(
        topic,
        encode_command(command),
        str(command.get("experiment_id", "")),
        on_delivery=delivered,
    )
    remaining = producer.flush(20)
    if remaining or errors:
        # flush() returns 0 once a message has *failed* too: the callback tells which
        reason = errors[0] if errors else "timed out"
        raise BrokerError(f"control command not delivered to {topic}: {reason}")
