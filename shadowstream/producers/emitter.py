"""ShadowEmitter: encode on the calling thread, hand to librdkafka, never wait.

The calling thread pays for one Avro encode and one ``produce()`` into
librdkafka's in-memory queue (a few microseconds). Delivery happens on
librdkafka's threads; a small daemon thread serves delivery reports. When the
queue is full (broker slow or down) or an event cannot be delivered before
``message_timeout_ms``, the event is dropped and counted, never raised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import KafkaError, Message, Producer

from shadowstream.core.errors import IncompatibleSchemaError
from shadowstream.core.secrets import redact_text
from shadowstream.core.topics import TopicNames
from shadowstream.producers.capture import ChampionCall
from shadowstream.producers.emitter_stats import EmitterStats
from shadowstream.producers.jsonable import to_json
from shadowstream.producers.kafka_producer import producer_config
from shadowstream.producers.redaction import RedactionPolicy, Redactor
from shadowstream.producers.request_ids import new_request_id
from shadowstream.producers.schema_announce import SchemaAnnouncer
from shadowstream.producers.shadowed import CallExtractors, shadow_function
from shadowstream.producers.tracing import RequestIdFromTrace, current_traceparent, request_id_from
from shadowstream.schemas import REQUEST, RESPONSE
from shadowstream.schemas.records import RequestEvent, ResponseEvent

log = logging.getLogger(__name__)

__all__ = ["EmitterStats", "ShadowEmitter", "new_request_id"]  # as before the split

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", RequestEvent, ResponseEvent)


def _attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    if not attributes:
        return {}
    for key, value in attributes.items():
        if type(key) is not str or type(value) is not str:
            return {str(k): str(v) for k, v in attributes.items()}
    return attributes if isinstance(attributes, dict) else dict(attributes)


_to_json = to_json  # pydantic models, dataclasses, attrs, enums: their JSON form


class ShadowEmitter:
    """Emit request and champion-response events for one service.

    Args:
        broker_url: ``kafka://host:port[,host:port]`` or ``host:port``.
        service: the emitting service's name (stored with every request).
        champion_model: default model id of the production model.
        topic_prefix: must match the agents' ``SHADOW_TOPIC_PREFIX``.
        queue_max_messages: bound on events waiting for the broker; beyond it,
            events are dropped (memory stays bounded when Kafka is down).
        message_timeout_ms: an event not delivered by then is dropped.
        kafka_config: extra librdkafka settings (SASL, TLS, ...; docs/kafka.md).
        enabled: ``False`` turns every call into a no-op (kill switch).
        trace_context: record the active OpenTelemetry span's ``traceparent``
            with each request (when opentelemetry-api is installed).
        request_id_from_trace: ``"trace"`` uses the active trace id as the
            request id, ``"span"`` trace id + span id; None (default) generates one.
        publish_schemas: publish the event schemas this SDK writes to the
            schema topic at start-up (off the request path; docs/schemas.md).
        redaction: PII redaction before anything is encoded: a
            :class:`~shadowstream.producers.redaction.RedactionPolicy`, the
            ``[redaction]`` table as a dict, or the path of a TOML config file
            holding one (see docs/security.md). An invalid policy raises
            ConfigError here, at start-up; a failure while redacting an event
            drops that event (``dropped_redaction``), it is never sent raw.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        service: str,
        champion_model: str = "champion",
        topic_prefix: str = "shadow",
        queue_max_messages: int = 100_000,
        message_timeout_ms: int = 30_000,
        kafka_config: Mapping[str, Any] | None = None,
        enabled: bool = True,
        trace_context: bool = True,
        request_id_from_trace: RequestIdFromTrace | None = None,
        publish_schemas: bool = True,
        redaction: RedactionPolicy | Mapping[str, Any] | str | Path | None = None,
    ) -> None:
        self.service = service
        self.trace_context = trace_context
        self.request_id_from_trace = request_id_from_trace
        self.schema_error: str | None = None
        self.champion_model = champion_model
        self.enabled = enabled
        topics = TopicNames(topic_prefix)
        self._requests_topic = topics.requests
        self._responses_topic = topics.responses
        self._stats = EmitterStats()
        self._lock = threading.Lock()
        self._closed = False
        redactor = Redactor(
            RedactionPolicy.coerce(redaction), "sdk", to_jsonable=lambda v: json.loads(_to_json(v))
        )
        self._redactor: Redactor | None = redactor if redactor.active else None
        conf = producer_config(
            broker_url,
            queue_max_messages=queue_max_messages,
            message_timeout_ms=message_timeout_ms,
            on_error=self._on_error,
            on_delivery=self._on_delivery,
            kafka_config=kafka_config,
        )
        self._producer = Producer(conf)
        self._produce = self._producer.produce
        self._last_error_log = 0.0
        self._poller = threading.Thread(
            target=self._poll_loop, name="shadow-emitter-poll", daemon=True
        )
        self._poller.start()
        self._announcer: SchemaAnnouncer | None = None
        if publish_schemas and enabled:
            self._announcer = SchemaAnnouncer(
                {
                    "bootstrap.servers": conf["bootstrap.servers"],
                    "logger": conf["logger"],
                    **(kafka_config or {}),
                },
                topics.schemas,
                [REQUEST.schema, RESPONSE.schema],
                self._schema_refused,
            )

    # -- public API -----------------------------------------------------------
    def emit_request(
        self,
        request_id: str,
        endpoint: str,
        payload: Any,
        *,
        attributes: Mapping[str, str] | None = None,
        champion_model: str | None = None,
        experiment_id: str = "live",
        timestamp_us: int | None = None,
        traceparent: str | None = None,
    ) -> bool:
        """Emit a RequestEvent. Returns False (and counts) if it was dropped.

        ``traceparent`` defaults to the active OpenTelemetry span's (``trace_context``).
        """
        if not self.enabled:
            return False
        if traceparent is None and self.trace_context:
            traceparent = current_traceparent()
        record: RequestEvent = {
            "request_id": request_id,
            "timestamp_us": timestamp_us or time.time_ns() // 1000,
            "service": self.service,
            "endpoint": endpoint,
            "champion_model": champion_model or self.champion_model,
            "payload": payload,
            "attributes": _attributes(attributes),
            "experiment_id": experiment_id,
            "traceparent": traceparent,
        }
        redactor = self._redactor  # the one place the redaction stage runs
        if redactor is not None and not self._redact(redactor.request, record):
            return False
        try:
            payload = record["payload"]
            record["payload"] = payload if isinstance(payload, str) else _to_json(payload)
            value = REQUEST.encode(record)
        except Exception:
            self._count("dropped_invalid")
            return False
        return self._send(self._requests_topic, request_id, value)

    def emit_response(
        self,
        request_id: str,
        output: Any,
        latency_ms: float,
        *,
        status: str = "ok",
        error: str | None = None,
        model: str | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        tool_calls: int | None = None,
        cost: float | None = None,
        tool_trace: Any = None,
        experiment_id: str = "live",
    ) -> bool:
        """Emit the champion's ResponseEvent. Returns False (and counts) if dropped."""
        if not self.enabled:
            return False
        record: ResponseEvent = {
            "request_id": request_id,
            "timestamp_us": time.time_ns() // 1000,
            "role": "champion",
            "challenger": "",
            "model": model or self.champion_model,
            "output": output,
            "latency_ms": latency_ms,
            # an unknown status is refused by the encoder: counted as dropped_invalid
            "status": status,  # type: ignore[typeddict-item]
            # credentials in an exception's text never leave the service
            "error": None if error is None else redact_text(str(error))[:2000],
            "usage": {
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "tool_calls": tool_calls,
                "cost": cost,
            },
            "tool_trace": tool_trace,
            "experiment_id": experiment_id,
        }
        redactor = self._redactor
        if redactor is not None and not self._redact(redactor.response, record):
            return False
        try:
            output, trace = record["output"], record["tool_trace"]  # as redacted
            record["output"] = None if output is None else _to_json(output)
            record["tool_trace"] = None if trace is None else _to_json(trace)
            record["latency_ms"] = float(record["latency_ms"])
            value = RESPONSE.encode(record)
        except Exception:
            self._count("dropped_invalid")
            return False
        return self._send(self._responses_topic, request_id, value)

    def capture(
        self,
        endpoint: str,
        payload: Any,
        *,
        request_id: str | None = None,
        attributes: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> ChampionCall:
        """Context manager around the champion call; see :class:`ChampionCall`."""
        traceparent = current_traceparent() if self.trace_context and self.enabled else None
        return ChampionCall(
            self,
            endpoint=endpoint,
            payload=payload,
            request_id=request_id
            or request_id_from(traceparent, self.request_id_from_trace)
            or new_request_id(),
            attributes=attributes,
            model=model,
            traceparent=traceparent,
        )

    def shadowed(
        self,
        endpoint: str,
        *,
        payload: Callable[..., Any] | None = None,
        attributes: Callable[..., Mapping[str, str]] | None = None,
        usage: Callable[[Any], Mapping[str, Any]] | None = None,
        output: Callable[[Any], Any] | None = None,
    ) -> Callable[[F], F]:
        """Decorator: every call of the function is a captured champion call.

        ``payload(*args, **kwargs)`` builds the input payload (default: the
        arguments by parameter name, framework objects such as a Request, a
        BackgroundTasks or a DB session left out; a single argument is the
        payload itself); ``attributes(*args, **kwargs)`` the slicing attributes;
        ``output(result)`` the champion's output (default: the result; a
        framework response with a JSON body records that body); ``usage(result)``
        a dict of tokens_in/tokens_out/tool_calls/cost. Models, dataclasses,
        attrs classes and enums are recorded as their JSON form. A failing
        extractor loses that field, never the call.
        """
        extractors = CallExtractors(payload, attributes, usage, output)
        return lambda fn: shadow_function(self, endpoint, extractors, fn)

    def stats(self) -> EmitterStats:
        """Counters so far; ``delivered`` is exact once :meth:`flush` returned 0."""
        with self._lock:
            stats = EmitterStats(**vars(self._stats))
            stats.redacted = dict(self._stats.redacted)
        queued = 0 if self._closed else len(self._producer)
        stats.delivered = max(stats.emitted - stats.dropped_undeliverable - queued, 0)
        return stats

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` s for queued events; returns how many are still queued."""
        try:
            return int(self._producer.flush(timeout))
        except Exception:
            return len(self._producer)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, then stop; events still queued after ``timeout`` are counted as dropped."""
        if self._closed:
            return
        if self._announcer is not None:
            self._announcer.stop()
        remaining = self.flush(timeout)
        self._closed = True
        if remaining:
            with self._lock:
                self._stats.dropped_undeliverable += remaining
        self._poller.join(timeout=1.0)

    def __enter__(self) -> ShadowEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------
    def _redact(self, redact: Callable[[E, dict[str, int]], None], record: E) -> bool:
        """Redact ``record`` in place (the redactor's request or response stage); False
        (counted) when redaction failed: the event is dropped, never sent raw."""
        counts: dict[str, int] = {}
        try:
            redact(record, counts)
        except Exception:
            self._count("dropped_redaction")
            self._log_error("shadow event dropped: the redaction stage failed")
            return False
        if counts:
            with self._lock:
                redacted = self._stats.redacted
                for name, n in counts.items():
                    redacted[name] = redacted.get(name, 0) + n
        return True

    def _send(self, topic: str, key: str, value: bytes) -> bool:
        if self._closed:
            self._count("dropped_closed")
            return False
        try:
            self._produce(topic, value, key)
        except BufferError:
            self._count("dropped_queue_full")
            return False
        except Exception:
            self._count("dropped_invalid")
            return False
        with self._lock:  # the hot path: no getattr/setattr
            self._stats.emitted += 1
        return True

    def _count(self, field: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._stats, field, getattr(self._stats, field) + n)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None and not self._closed:  # after close, leftovers were counted
            self._count("dropped_undeliverable")
            self._log_error(f"shadow event dropped: {err}")

    def _schema_refused(self, exc: IncompatibleSchemaError) -> None:
        self.schema_error = str(exc)
        self.enabled = False  # no reader could resolve these events

    def _on_error(self, err: KafkaError) -> None:
        self._log_error(f"shadow emitter: {err}")

    def _log_error(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 30.0:  # at most one line per 30 s
            self._last_error_log = now
            log.warning(redact_text(message))

    def _poll_loop(self) -> None:
        while not self._closed:
            try:
                self._producer.poll(0.2)
            except Exception:  # never let the poller die
                time.sleep(0.2)
