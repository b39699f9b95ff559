"""The generated encoders/decoders are byte-for-byte Avro: checked against fastavro."""

from __future__ import annotations

import contextlib
import io
import random
import string
from typing import Any

import fastavro
import pytest

from schemas import COMPARISON, DEAD_LETTER, REQUEST, RESPONSE, EventCodec
from schemas.fastcodec import compile_decoder, compile_encoder, zz
from shadowstream.errors import MalformedEventError, SchemaError

CODECS = [REQUEST, RESPONSE, COMPARISON, DEAD_LETTER]


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


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name.split(".")[-1])
def test_matches_fastavro_on_random_records(codec: EventCodec) -> None:
    rng = random.Random(42)
    parsed = fastavro.parse_schema(codec.schema)
    encode = compile_encoder(codec.schema)
    decode = compile_decoder(codec.schema)
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


def test_defaults_fill_missing_fields_like_fastavro() -> None:
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
    assert compile_encoder(COMPARISON.schema)(minimal) == expected.getvalue()


@pytest.mark.parametrize(
    "bad",
    [
        {"request_id": 5},  # wrong type
        {"timestamp_us": "now"},
        {"attributes": {"k": 1}},
        {"timestamp_us": 2**70},
    ],
)
def test_wrong_types_are_schema_errors(bad: dict[str, Any]) -> None:
    record = {
        "request_id": "r",
        "timestamp_us": 1,
        "service": "s",
        "endpoint": "e",
        "champion_model": "m",
        "payload": "{}",
        "attributes": {},
        "experiment_id": "live",
    }
    record.update(bad)
    with pytest.raises(SchemaError):
        REQUEST.encode(record)


def test_corrupt_bodies_are_malformed_not_crashes() -> None:
    rng = random.Random(1)
    good = RESPONSE.encode(random_value(RESPONSE.schema, rng, {}))
    for cut in range(10, len(good)):
        with pytest.raises(MalformedEventError):
            RESPONSE.decode(good[:cut])
    for _ in range(2000):
        noise = bytearray(good)
        for _ in range(3):
            noise[rng.randrange(10, len(noise))] = rng.getrandbits(8)
        with contextlib.suppress(MalformedEventError):
            RESPONSE.decode(bytes(noise))
