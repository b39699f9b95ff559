"""The sink frames Avro bodies into a container ClickHouse (and any Avro reader) can read."""

from __future__ import annotations

import io

import fastavro

from shadowstream.schemas import REQUEST
from shadowstream.warehouse.avro_container import container


def test_container_is_a_valid_avro_file() -> None:
    events = [
        {
            "request_id": f"r{i}",
            "timestamp_us": i,
            "service": "s",
            "endpoint": "/e",
            "champion_model": "m",
            "payload": "{}",
            "attributes": {"k": "ü" * i},
            "experiment_id": "live",
            "traceparent": None if i % 2 else f"00-{i:032x}-{i:016x}-01",
        }
        for i in range(300)
    ]
    bodies = [REQUEST.encode(e)[10:] for e in events]
    data = container(REQUEST.schema, bodies)
    assert list(fastavro.reader(io.BytesIO(data))) == events


def test_empty_container_is_valid() -> None:
    assert list(fastavro.reader(io.BytesIO(container(REQUEST.schema, [])))) == []
