"""The generated Python and the C codecs are byte-for-byte Avro: checked against fastavro."""

from __future__ import annotations

import contextlib
import io
import random
import string
from typing import Any

import fastavro
import pytest

from shadowstream.core.errors import MalformedEventError, SchemaError
from shadowstream.schemas import COMPARISON, DEAD_LETTER, REQUEST, RESPONSE, STATS, EventCodec
from shadowstream.schemas.codec import SchemaRegistry
from shadowstream.schemas.fastcodec import (
    Unsupported,
    compile_decoder,
    compile_encoder,
    compile_native,
    native_available,
    native_spec,
    zz,
)

CODECS = [REQUEST, RESPONSE, COMPARISON, DEAD_LETTER, STATS]
BACKENDS = ["python", "c"]


def body_codec(schema: dict[str, Any], backend: str) -> tuple[Any, Any]:
    """(encode(record) -> body, decode(body, pos) -> (record, end)) of one backend."""
    if backend == "python":
        return compile_encoder(schema), compile_decoder(schema)
    encode, decode = compile_native(schema)
    return encode, decode


def event_codec(schema: dict[str, Any], backend: str) -> EventCodec:
    return EventCodec(schema, SchemaRegistry(), backend=backend)


def minimal_request() -> dict[str, Any]:
    return {
        "request_id": "r",
        "timestamp_us": 1,
        "service": "s",
        "endpoint": "e",
        "champion_model": "m",
        "payload": "{}",
        "attributes": {},
        "experiment_id": "live",
    }


def test_the_c_codec_is_built() -> None:
    # pip builds it wherever a C compiler is present (CI, ./dev); without one the
    # project still works on the Python codec, but this suite should know.
    assert native_available(), (
        "shadowstream.schemas._cavro is not built: run pip install -e . with gcc"
    )
    assert REQUEST.backend == "c"


def random_value(schema: Any, rng: random.Random, named: dict[str, Any]) -> Any:
    if isinstance(schema, list):
        return None if rng.random() < 0.3 else random_value(schema[1], rng, named)
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(schema, dict) and "name" in schema:
        named[schema["name"]] = schema
    if kind == "string":
        alphabet = string.printable + "äöüß€😀中文"
        return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 40, 300])))
    if kind == "bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 3, 200])))
    if kind in ("long", "int"):
        bits = 31 if kind == "int" else 63
        return rng.choice([0, 1, -1, 63, 64, -65, 8191, 8192, rng.randint(-(2**bits), 2**bits - 1)])
    if kind == "double":
        return rng.choice([0.0, -1.5, 1e300, rng.random() * 1e6])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "enum":
        return rng.choice(schema["symbols"])
    if kind == "map":
        return {
            f"k{i}-{rng.random():.3f}": random_value(schema["values"], rng, named)
            for i in range(rng.choice([0, 1, 3, 70]))
        }
    if kind == "array":
        return [random_value(schema["items"], rng, named) for _ in range(rng.choice([0, 1, 4, 70]))]
    if kind == "record":
        return {f["name"]: random_value(f["type"], rng, named) for f in schema["fields"]}
    raise AssertionError(kind)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name.split(".")[-1])
def test_matches_fastavro_on_random_records(codec: EventCodec, backend: str) -> None:
    rng = random.Random(42)
    parsed = fastavro.parse_schema(codec.schema)
    encode, decode = body_codec(codec.schema, backend)
    for _ in range(500):
        record = random_value(codec.schema, rng, {})
        expected = io.BytesIO()
        fastavro.schemaless_writer(expected, parsed, record)
        body = encode(record)
        assert body == expected.getvalue()
        decoded, end = decode(body, 0)
        assert end == len(body)
        assert decoded == fastavro.schemaless_reader(io.BytesIO(body), parsed)


def test_zigzag_matches_the_spec() -> None:
    assert zz(0) == b"\x00"
    assert zz(-1) == b"\x01"
    assert zz(1) == b"\x02"
    assert zz(-64) == b"\x7f"
    assert zz(64) == b"\x80\x01"
    assert zz(2**63 - 1) == b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    with pytest.raises(OverflowError):
        zz(2**63)


@pytest.mark.parametrize("backend", BACKENDS)
def test_defaults_fill_missing_fields_like_fastavro(backend: str) -> None:
    minimal = {
        "request_id": "r",
        "challenger": "c",
        "outcome": "late",
        "request_ts_us": 1,
        "compared_at_us": 2,
        "champion_status": "ok",
        "challenger_status": "missing",
    }
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, fastavro.parse_schema(COMPARISON.schema), minimal)
    encode, _ = body_codec(COMPARISON.schema, backend)
    assert encode(minimal) == expected.getvalue()


@pytest.mark.parametrize(
    "bad",
    [
        {"request_id": 5},  # wrong type
        {"timestamp_us": "now"},
        {"attributes": {"k": 1}},
        {"timestamp_us": 2**70},
        {"timestamp_us": 1.5},
        {"attributes": ["k"]},
        {"attributes": {1: "v"}},
        {"payload": b"{}"},
        {"payload": "\ud800"},  # a lone surrogate has no UTF-8 form
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_types_are_schema_errors(bad: dict[str, Any], backend: str) -> None:
    record = minimal_request()
    record.update(bad)
    codec = event_codec(REQUEST.schema, backend)
    with pytest.raises(SchemaError):
        codec.encode(record)
    del record["request_id"]  # a required field without a default
    with pytest.raises(SchemaError):
        codec.encode(record)


@pytest.mark.parametrize("backend", BACKENDS)
def test_int_fields_must_fit_32_bits(backend: str) -> None:
    codec = event_codec(RESPONSE.schema, backend)
    record = random_value(RESPONSE.schema, random.Random(3), {})
    record["usage"]["tool_calls"] = 2**31
    with pytest.raises(SchemaError):
        codec.encode(record)
    record["usage"]["tool_calls"] = -(2**31)
    assert codec.decode(codec.encode(record))["usage"]["tool_calls"] == -(2**31)


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_bodies_are_malformed_not_crashes(backend: str) -> None:
    codec = event_codec(RESPONSE.schema, backend)
    rng = random.Random(1)
    good = codec.encode(random_value(RESPONSE.schema, rng, {}))
    for cut in range(10, len(good)):
        with pytest.raises(MalformedEventError):
            codec.decode(good[:cut])
    for _ in range(2000):
        noise = bytearray(good)
        for _ in range(3):
            noise[rng.randrange(10, len(noise))] = rng.getrandbits(8)
        with contextlib.suppress(MalformedEventError):
            codec.decode(bytes(noise))


@pytest.mark.parametrize("count", [2**40, -(2**63)])  # -(2**63): a block count with no negation
@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_counts_in_garbage_fail_fast(backend: str, count: int) -> None:
    # a map/array count far beyond the bytes left must not allocate or loop for it
    codec = event_codec(REQUEST.schema, backend)
    body = codec.encode(minimal_request())
    at = body.index(b"{}") + 2  # the attributes map count follows the payload
    forged = body[:at] + zz(count) + body[at + 1 :]
    with pytest.raises(MalformedEventError):
        codec.decode(forged)


@pytest.mark.timeout(60, method="thread")  # a C loop never yields to a signal
@pytest.mark.parametrize("count", [2**40, -(2**63)])
@pytest.mark.parametrize("backend", ["python", "c"])
def test_implausible_counts_of_zero_size_items_are_refused(backend: str, count: int) -> None:
    # Items that take no bytes (null) cannot be bounded by the bytes left: without its
    # guard a decoder would append 2^40 Nones (the C one could also negate -2^63,
    # overflow, and read an empty array).
    schema = {
        "type": "record",
        "name": "Nulls",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "null"}}],
    }
    codec = event_codec(schema, backend)
    empty = codec.encode({"xs": []})
    block = zz(count) + (zz(0) if count < 0 else b"")  # a negative count carries a size
    forged = empty[:-1] + block + b"\x00"
    with pytest.raises(MalformedEventError) as caught:
        codec.decode(forged)
    assert caught.value.reason == "invalid"


def test_the_c_decoder_reads_older_python_encoded_bytes_identically() -> None:
    rng = random.Random(9)
    python, c = event_codec(COMPARISON.schema, "python"), event_codec(COMPARISON.schema, "c")
    for _ in range(300):
        record = random_value(COMPARISON.schema, rng, {})
        data = python.encode(record)
        assert c.encode(record) == data
        assert c.decode(data) == python.decode(data)


def test_native_spec_refuses_what_the_c_codec_cannot_do() -> None:
    with pytest.raises(Unsupported):
        native_spec(
            {"type": "record", "name": "U", "fields": [{"name": "x", "type": ["int", "string"]}]}
        )
    recursive = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    with pytest.raises(Unsupported):
        native_spec(recursive)
