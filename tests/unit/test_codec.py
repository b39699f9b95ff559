"""Avro single-object encoding: round trip, schema evolution, clear errors."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest

from shadowstream.core.errors import MalformedEventError, UnknownSchemaError
from shadowstream.schemas import (
    COMPARISON,
    REQUEST,
    RESPONSE,
    EventCodec,
    SchemaRegistry,
    load_schema,
)
from shadowstream.schemas.codec import MAGIC, schema_fingerprint


def request(**overrides: Any) -> dict[str, Any]:
    event = {
        "request_id": "r-1",
        "timestamp_us": 1_700_000_000_000_000,
        "service": "search",
        "endpoint": "/rank",
        "champion_model": "m1",
        "payload": '{"q": "grüße 👋"}',
        "attributes": {"language": "de", "tier": "pro"},
        "experiment_id": "live",
        "traceparent": None,
    }
    event.update(overrides)
    return event


def response(**overrides: Any) -> dict[str, Any]:
    event = {
        "request_id": "r-1",
        "timestamp_us": 1,
        "role": "challenger",
        "challenger": "fast",
        "model": "m2",
        "output": '{"a": 1}',
        "latency_ms": 12.5,
        "status": "ok",
        "error": None,
        "usage": {"tokens_in": 3, "tokens_out": None, "tool_calls": 2, "cost": 0.001},
        "tool_trace": None,
        "experiment_id": "live",
    }
    event.update(overrides)
    return event


def test_round_trip_request_and_response() -> None:
    assert REQUEST.decode(REQUEST.encode(request())) == request()
    assert RESPONSE.decode(RESPONSE.encode(response())) == response()


def test_wire_format_is_single_object_encoding() -> None:
    data = REQUEST.encode(request())
    assert data[:2] == MAGIC
    assert data[2:10] == REQUEST.fingerprint == schema_fingerprint(load_schema("request_event"))
    # the body is plain Avro binary: any Avro reader with the schema reads it
    body = fastavro.schemaless_reader(io.BytesIO(data[10:]), fastavro.parse_schema(REQUEST.schema))
    assert body == request()


def test_fingerprint_matches_the_avro_spec_test_vector() -> None:
    # Avro spec: CRC-64-AVRO("null") = 0x63dd24e7cc258f8a, written little-endian
    assert schema_fingerprint("null") == bytes.fromhex("8a8f25cce724dd63")  # type: ignore[arg-type]


def test_defaults_fill_optional_fields() -> None:
    minimal = {k: v for k, v in request().items() if k not in ("attributes", "experiment_id")}
    decoded = REQUEST.decode(REQUEST.encode(minimal))
    assert decoded["attributes"] == {}
    assert decoded["experiment_id"] == "live"


def test_reader_with_newer_schema_reads_an_older_event() -> None:
    old_schema = load_schema("request_event")
    new_schema = copy.deepcopy(old_schema)
    new_schema["fields"].append({"name": "prompt_version", "type": "string", "default": "unknown"})
    new_schema["fields"] = [f for f in new_schema["fields"] if f["name"] != "champion_model"]
    registry = SchemaRegistry()
    writer = EventCodec(old_schema, registry)
    reader = EventCodec(new_schema, registry, older_versions=[old_schema])
    decoded = reader.decode(writer.encode(request()))
    assert decoded["prompt_version"] == "unknown"
    assert "champion_model" not in decoded
    assert decoded["request_id"] == "r-1"
    assert decoded["attributes"] == {"language": "de", "tier": "pro"}


def test_unknown_fingerprint_is_a_clear_error() -> None:
    data = bytearray(REQUEST.encode(request()))
    data[2:10] = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    with pytest.raises(UnknownSchemaError) as info:
        REQUEST.decode(bytes(data))
    assert "0102030405060708" in str(info.value)
    assert info.value.reason == "unknown_schema"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not_avro"),
        (b"\x00\x01garbage-garbage", "not_avro"),
        (b'{"request_id": "json"}', "not_avro"),
    ],
)
def test_garbage_is_malformed_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedEventError) as info:
        REQUEST.decode(data)
    assert info.value.reason == reason


def test_truncated_body_is_reported_as_truncated() -> None:
    data = REQUEST.encode(request())
    with pytest.raises(MalformedEventError) as info:
        REQUEST.decode(data[: len(data) // 2])
    assert info.value.reason == "truncated"


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(MalformedEventError):
        REQUEST.decode(REQUEST.encode(request()) + b"\x00\x00")


def test_an_event_of_another_type_is_rejected() -> None:
    with pytest.raises(MalformedEventError) as info:
        RESPONSE.decode(REQUEST.encode(request()))
    assert info.value.reason == "wrong_event_type"


def test_comparison_round_trip_with_nulls() -> None:
    comparison = {
        "request_id": "r",
        "challenger": "c",
        "experiment_id": "live",
        "outcome": "challenger_missing",
        "service": "",
        "endpoint": "",
        "champion_model": "",
        "challenger_model": "",
        "request_ts_us": 1,
        "compared_at_us": 2,
        "champion_status": "ok",
        "challenger_status": "missing",
        "champion_latency_ms": 1.0,
        "challenger_latency_ms": None,
        "latency_delta_ms": None,
        "diverged": None,
        "divergence_score": None,
        "comparator": "json",
        "diff_summary": "",
        "diff_paths": [],
        "ignored_paths": [],
        "champion_format_valid": None,
        "challenger_format_valid": None,
        "champion_tokens_in": None,
        "champion_tokens_out": None,
        "challenger_tokens_in": None,
        "challenger_tokens_out": None,
        "champion_tool_calls": None,
        "challenger_tool_calls": None,
        "champion_cost": None,
        "challenger_cost": None,
        "champion_error": None,
        "challenger_error": None,
        "attributes": {},
        "trace_id": None,
        "span_id": None,
        "measures": None,
        "judge_verdict": None,
        "judge_rationale": None,
    }
    decoded = COMPARISON.decode(COMPARISON.encode(comparison))
    assert {k: decoded[k] for k in comparison} == comparison
    # fields added later (optional, null default) come back as null
    assert all(decoded[k] is None for k in decoded.keys() - comparison.keys())
    measured = {**comparison, "measures": {"rbo@10,p=0.9": 0.75, "shared@10": 8.0}}
    decoded = COMPARISON.decode(COMPARISON.encode(measured))
    assert {k: decoded[k] for k in measured} == measured
