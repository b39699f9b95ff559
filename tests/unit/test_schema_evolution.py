"""Schema evolution: compatibility rules, resolving other versions, schema-topic records."""

from __future__ import annotations

import copy
import itertools
import json
import random
from typing import Any

import fastavro
import pytest

from shadowstream.core.errors import IncompatibleSchemaError, UnknownSchemaError
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE, EventCodec, SchemaRegistry
from shadowstream.schemas.codec import CODECS, load_history, load_schema, schema_fingerprint
from shadowstream.schemas.compat import (
    added_field_problems,
    evolution_problems,
    read_problems,
)
from shadowstream.schemas.topic import parse_schema_record, schema_record
from tests.unit.test_fastcodec import random_value


def with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(schema)
    new["fields"].append(field)
    return new


OPTIONAL = {"name": "client_version", "type": ["null", "string"], "default": None}


# -- the rules ------------------------------------------------------------------------------
def test_every_shipped_version_follows_the_rules_against_all_earlier_ones() -> None:
    for codec in CODECS:
        name = codec.name.rsplit(".", 1)[-1]
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
        history = load_history(snake)
        assert evolution_problems(codec.schema, history) == [], codec.name
        versions = [*history, codec.schema]
        for older, newer in itertools.pairwise(versions):
            assert added_field_problems(newer, older) == [], codec.name
            names = [f["name"] for f in older["fields"]]
            assert [f["name"] for f in newer["fields"]][: len(names)] == names  # appended
            for field in newer["fields"][len(names) :]:
                assert field["type"][0] == "null" and field["default"] is None  # optional
        assert codec.version == len(history) + 1
    assert REQUEST.version == 2 and COMPARISON.version == 2 and RESPONSE.version == 1


def test_adding_an_optional_field_is_compatible_both_ways() -> None:
    old = load_schema("response_event")
    new = with_field(old, OPTIONAL)
    assert read_problems(old, new) == [] and read_problems(new, old) == []
    assert evolution_problems(new, [old]) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: with_field(s, {"name": "x", "type": "string"}), "no default"),
        (lambda s: {**s, "fields": s["fields"][1:]}, "no default"),
        (
            lambda s: {
                **s,
                "fields": [
                    {**f, "type": "int"} if f["name"] == "latency_ms" else f for f in s["fields"]
                ],
            },
            "cannot be read as",
        ),
        (
            lambda s: {
                **s,
                "fields": [
                    {**f, "type": {**f["type"], "symbols": [*f["type"]["symbols"], "cached"]}}
                    if f["name"] == "status"
                    else f
                    for f in s["fields"]
                ],
            },
            "lacks symbols",
        ),
        (
            lambda s: {
                **s,
                "fields": [
                    {**f, "type": ["null", "string", "long"]} if f["name"] == "error" else f
                    for f in s["fields"]
                ],
            },
            "none of the reader",
        ),
    ],
    ids=["required-field", "removed-field", "type-change", "enum-symbol", "union-branch"],
)
def test_breaking_changes_are_named(change: Any, expected: str) -> None:
    old = load_schema("response_event")
    problems = evolution_problems(change(copy.deepcopy(old)), [old])
    assert problems, "a breaking change must be reported"
    assert any(expected in p for p in problems), problems


def test_enum_symbols_may_be_added_when_the_enum_has_a_default() -> None:
    old: dict[str, Any] = {
        "type": "record",
        "name": "E",
        "fields": [
            {
                "name": "s",
                "type": {"type": "enum", "name": "S", "symbols": ["a", "b"], "default": "a"},
            }
        ],
    }
    new = copy.deepcopy(old)
    new["fields"][0]["type"]["symbols"].append("c")
    assert read_problems(new, old) == []  # the old reader maps c to its default
    assert evolution_problems(new, [old]) == []


def test_other_record_types_are_not_compared_and_promotions_only_go_one_way() -> None:
    assert evolution_problems(REQUEST.schema, [RESPONSE.schema]) == []
    int_record = {"type": "record", "name": "N", "fields": [{"name": "n", "type": "int"}]}
    long_record = {"type": "record", "name": "N", "fields": [{"name": "n", "type": "long"}]}
    assert read_problems(int_record, long_record) == []
    assert read_problems(long_record, int_record)
    assert added_field_problems(long_record, int_record) == []


# -- reading other versions ---------------------------------------------------------------------
def request(**overrides: Any) -> dict[str, Any]:
    event = {
        "request_id": "r-1",
        "timestamp_us": 17,
        "service": "s",
        "endpoint": "/e",
        "champion_model": "m",
        "payload": '{"a": 1}',
        "attributes": {"language": "de"},
        "experiment_id": "live",
        "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    }
    event.update(overrides)
    return event


class DictSource:
    def __init__(self, schemas: list[dict[str, Any]]) -> None:
        self.by_fp = {schema_fingerprint(s): s for s in schemas}
        self.asked: list[bytes] = []

    def fetch(self, fingerprint: bytes) -> dict[str, Any] | None:
        self.asked.append(fingerprint)
        return self.by_fp.get(fingerprint)


def test_an_older_reader_reads_a_newer_writer_found_in_a_source() -> None:
    v1 = load_history("request_event")[0]
    v3 = with_field(REQUEST.schema, OPTIONAL)
    writer = EventCodec(v3, SchemaRegistry())
    registry = SchemaRegistry()
    reader = EventCodec(v1, registry)
    data = writer.encode({**request(), "client_version": "9.1"})
    with pytest.raises(UnknownSchemaError):
        reader.decode(data)
    source = DictSource([v3])
    registry.attach(source)
    decoded = reader.decode(data)
    assert decoded == {k: v for k, v in request().items() if k != "traceparent"}
    assert reader.resolution_paths[writer.fingerprint] == "compiled"
    reader.decode(data)
    assert source.asked.count(writer.fingerprint) == 1  # fetched once, then known
    registry.detach(source)


def test_a_source_cannot_redefine_a_fingerprint() -> None:
    v1 = load_history("request_event")[0]
    registry = SchemaRegistry()
    reader = EventCodec(v1, registry)
    forged = with_field(REQUEST.schema, OPTIONAL)

    class Liar:
        def fetch(self, fingerprint: bytes) -> dict[str, Any] | None:
            return forged  # claims to be any fingerprint

    registry.attach(Liar())
    with pytest.raises(UnknownSchemaError):
        reader.decode(REQUEST.encode(request()))


def test_an_incompatible_writer_is_refused_with_its_problems() -> None:
    v2 = REQUEST.schema
    changed = copy.deepcopy(v2)
    changed["fields"] = [
        {**f, "type": "long"} if f["name"] == "payload" else f for f in changed["fields"]
    ]
    writer = EventCodec(changed, SchemaRegistry())
    registry = SchemaRegistry()
    reader = EventCodec(v2, registry)
    registry.register(changed)
    with pytest.raises(IncompatibleSchemaError) as info:
        reader.decode(writer.encode({**request(), "payload": 5}))
    assert info.value.reason == "incompatible_schema"
    assert any("payload" in p for p in info.value.problems)


@pytest.mark.parametrize("seed", range(3))
def test_the_compiled_path_matches_fastavro_resolution(seed: int) -> None:
    rng = random.Random(seed)
    v1 = load_history("comparison_event")[0]
    for writer_schema, reader_schema in ((v1, COMPARISON.schema), (COMPARISON.schema, v1)):
        registry = SchemaRegistry()
        writer = EventCodec(writer_schema, SchemaRegistry())
        reader = EventCodec(reader_schema, registry)
        registry.register(writer_schema)
        for _ in range(50):
            record = random_value(writer_schema, rng, {})
            data = writer.encode(record)
            expected = fastavro.schemaless_reader(
                __import__("io").BytesIO(data[10:]),
                fastavro.parse_schema(writer_schema),
                fastavro.parse_schema(reader_schema),
            )
            assert reader.decode(data) == expected
        assert reader.resolution_paths[writer.fingerprint] == "compiled"


def test_defaults_are_not_shared_between_records() -> None:
    base = load_schema("stats_event")
    new = with_field(
        base, {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}}
    )
    registry = SchemaRegistry()
    reader = EventCodec(new, registry)
    registry.register(base)
    writer = EventCodec(base, SchemaRegistry())
    record = {
        "instance": "i",
        "seq": 1,
        "timestamp_us": 1,
        "stage": "router",
        "challenger": "",
        "counters": {"a": 1},
    }
    first = reader.decode(writer.encode(record))
    first["tags"]["x"] = "y"
    assert reader.decode(writer.encode(record))["tags"] == {}


# -- schema-topic records -------------------------------------------------------------------------
def test_schema_records_round_trip_and_hostile_ones_are_ignored() -> None:
    key, value = schema_record(REQUEST.schema)
    assert parse_schema_record(key, value) == (REQUEST.fingerprint, REQUEST.schema)
    other_key, _ = schema_record(RESPONSE.schema)
    hostile = [
        (None, value),
        (key, None),
        (other_key, value),  # a fingerprint that is not this schema's
        (key, b"\xff\x00garbage"),
        (key, b"[" * 100_000 + b"]" * 100_000),
        (b"zz" * 8, value),
        (key, json.dumps({"type": "record", "name": "X", "fields": [{"name": 1}]}).encode()),
        (key, b"x" * 300_000),
    ]
    for k, v in hostile:
        assert parse_schema_record(k, v) is None
