"""A batch item as the events the pipeline already understands.

* the request: a RequestEvent with the run's experiment id and the item's
  deterministic request id, sent to ``<prefix>.batch.requests`` with the
  Kafka header ``shadow.challengers: a,b`` (the router fans it out to exactly
  those challengers' batch topics);
* its reference, if any: a ResponseEvent with role ``champion`` on
  ``<prefix>.responses``, so the join compares the challenger with it.

The request's timestamp is the submission time: reports and ``--since``
windows see a batch run when it ran (the original capture time is not an
attribute, to keep slices low-cardinality).
"""

from __future__ import annotations

from shadowstream.experiments.ids import request_id
from shadowstream.experiments.items import BatchItem, Reference
from shadowstream.schemas.records import RequestEvent, ResponseEvent
from shadowstream.schemas.wire import TARGETS_HEADER

Headers = list[tuple[str, str | bytes | None]]


def request_event(experiment_id: str, item: BatchItem, timestamp_us: int) -> RequestEvent:
    return {
        "request_id": request_id(experiment_id, item.source_id),
        "timestamp_us": timestamp_us,
        "service": item.service,
        "endpoint": item.endpoint,
        "champion_model": item.champion_model,
        "payload": item.payload,
        "attributes": dict(item.attributes),
        "experiment_id": experiment_id,
    }


def reference_event(
    experiment_id: str, rid: str, reference: Reference, timestamp_us: int
) -> ResponseEvent:
    return {
        "request_id": rid,
        "timestamp_us": timestamp_us,
        "role": "champion",
        "challenger": "",
        "model": reference.model,
        "output": reference.output,
        "latency_ms": float(reference.latency_ms),
        "status": reference.status,
        "error": reference.error,
        "usage": {
            "tokens_in": reference.tokens_in,
            "tokens_out": reference.tokens_out,
            "tool_calls": reference.tool_calls,
            "cost": reference.cost,
        },
        "tool_trace": reference.tool_trace,
        "experiment_id": experiment_id,
    }


def targets_header(challengers: list[str]) -> Headers:
    return [(TARGETS_HEADER, ",".join(challengers).encode())]
