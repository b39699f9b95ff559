"""What the router accepts from its input topics: a decodable event with a request id and
a timestamp the warehouse can keep; anything else is dead-lettered with its reason."""

from __future__ import annotations

from typing import TypeVar

from confluent_kafka import Message

from shadowstream.core.errors import SchemaError
from shadowstream.runtime.kafka_io import DeadLetters
from shadowstream.schemas import EventCodec
from shadowstream.schemas.records import RequestEvent, ResponseEvent
from shadowstream.schemas.timestamps import EventTimeWindow

E = TypeVar("E", RequestEvent, ResponseEvent)


def header(msg: Message, name: str) -> bytes | None:
    """The value of the message's header ``name`` (the first one), if it has one."""
    for key, value in msg.headers() or []:  # type: ignore[str-unpack]
        if key == name and isinstance(value, bytes):
            return value
    return None


def accept_event(
    msg: Message,
    codec: EventCodec[E],
    deadletters: DeadLetters,
    max_message_bytes: int,
    event_time: EventTimeWindow | None,
) -> E | None:
    """The decoded event, or None once the message has been dead-lettered."""
    value = msg.value()
    if not value:
        deadletters.send(msg, "empty", "message has no value")
        return None
    if len(value) > max_message_bytes:
        deadletters.send(msg, "oversized", f"{len(value)} bytes > limit {max_message_bytes}")
        return None
    try:
        event = codec.decode(value)
    except SchemaError as exc:
        deadletters.send(msg, getattr(exc, "reason", "invalid"), str(exc))
        return None
    if not event.get("request_id"):
        deadletters.send(msg, "missing_request_id", "request_id is empty")
        return None
    if event_time is not None:
        problem = event_time.problem(event["timestamp_us"])
        if problem is not None:
            deadletters.send(msg, "bad_timestamp", problem)
            return None
    return event
