"""The ResponseEvent a challenger worker publishes for one request: built, redacted like
the champion's, produced on the request's partition."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.core.secrets import redact_text
from shadowstream.producers.redaction import Redactor, scrub_answer
from shadowstream.runtime.kafka_io import OutputProducer
from shadowstream.schemas import RESPONSE
from shadowstream.schemas.records import RequestEvent, ResponseEvent, Status
from shadowstream.stream_agents.challengers.base import ModelAnswer, answer_usage


class ResponsePublisher:
    """Publishes a challenger's answers; ``redacted`` counts what redaction changed.

    ``redactor``: the service's redaction rules, applied to the challenger's answer too
    (its output, tool trace and error text), so both sides are redacted alike.
    ``storage_redactor``: the storage_only rules; the challenger saw those values, its
    answer must not carry them on (quoted in an error message, echoed in free text).
    """

    def __init__(
        self,
        spec: ChallengerSpec,
        topic: str,
        redactor: Redactor | None,
        storage_redactor: Redactor | None,
    ) -> None:
        self.spec = spec
        self.topic = topic
        self.redactor = redactor
        self.storage_redactor = storage_redactor
        self.redacted: dict[str, int] = {}

    def start(self, producer: OutputProducer) -> None:
        self.producer = producer

    def publish(
        self,
        request: RequestEvent,
        partition: int,
        answer: ModelAnswer | None,
        latency_ms: float,
        status: Status,
        error: str | None,
    ) -> None:
        record = challenger_response(self.spec, request, answer, latency_ms, status, error)
        if self.redactor is not None:
            self.redactor.response(record, self.redacted)
        if self.storage_redactor is not None and scrub_answer(
            self.storage_redactor, request, record
        ):
            name = "storage_only_values_in_answers"
            self.redacted[name] = self.redacted.get(name, 0) + 1
        self.producer.produce(
            self.topic, RESPONSE.encode(record), request["request_id"], partition=partition
        )


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def challenger_response(
    spec: ChallengerSpec,
    request: RequestEvent,
    answer: ModelAnswer | None,
    latency_ms: float,
    status: Status,
    error: str | None,
) -> ResponseEvent:
    """The challenger's answer (or its failure: no answer, a status and an error text)."""
    output = None
    if answer is not None and answer.output is not None:
        output = to_json(answer.output)
    return {
        "request_id": request["request_id"],
        "timestamp_us": time.time_ns() // 1000,
        "role": "challenger",
        "challenger": spec.name,
        "model": spec.model_id,
        "output": output,
        "latency_ms": latency_ms,
        "status": status,
        # an endpoint that echoes credentials (a 401 body quoting the Authorization
        # header) must not get them stored
        "error": None if error is None else redact_text(error),
        "usage": answer_usage(answer, spec),
        "tool_trace": to_json(answer.tool_trace)
        if answer is not None and answer.tool_trace is not None
        else None,
        "experiment_id": request["experiment_id"],
    }
