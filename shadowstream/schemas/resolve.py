"""Decoders for events written with another version of the reader's schema.

Avro schema resolution (fastavro's ``schemaless_reader(writer, reader)``) is
general but costs 10-30 us per event. This project's schemas only ever evolve
by adding optional fields (docs/schemas.md), so most writer/reader pairs
differ only in which top-level fields exist: those are decoded with the
writer's own compiled codec (C or generated Python) and then shaped like the
reader's record (fields the writer lacks get the reader's default, fields the
reader does not know are dropped). Any other difference goes through
fastavro's resolution.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from shadowstream.schemas.body_errors import (
    INVALID,
    TRUNCATED,
    read_with_fastavro,
    trailing,
    truncated,
    undecodable,
)
from shadowstream.schemas.compat import PRIMITIVES
from shadowstream.schemas.fastdecoder import compile_decoder
from shadowstream.schemas.native import compile_native
from shadowstream.schemas.schema_shapes import Decoder, Unsupported

Record = dict[str, Any]
BodyDecoder = Callable[[bytes, int], Record]  # (event bytes, body offset) -> record

# defaults that are plain JSON values in Avro too (no bytes/fixed/record decoding)
_SIMPLE_DEFAULT_KINDS = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "string", "enum", "array", "map"}
)


def _has_named_reference(schema: Any) -> bool:
    """True if a named type is referenced by name somewhere (not just defined inline)."""
    if isinstance(schema, str):
        return schema not in PRIMITIVES
    if isinstance(schema, list):
        return any(_has_named_reference(branch) for branch in schema)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            return any(_has_named_reference(f["type"]) for f in schema.get("fields", []))
        if kind == "array":
            return _has_named_reference(schema.get("items"))
        if kind == "map":
            return _has_named_reference(schema.get("values"))
        if isinstance(kind, dict | list | str):
            return _has_named_reference(kind) if kind not in ("enum", "fixed") else False
    return False


def _default_kind(field_type: Any) -> str:
    first = field_type[0] if isinstance(field_type, list) and field_type else field_type
    if isinstance(first, dict):
        return str(first.get("type"))
    return str(first)


def _canonical(field_type: Any) -> str:
    return json.dumps(field_type, sort_keys=True)


def _shape(writer: Record, reader: Record) -> Callable[[Record], Record] | None:
    """A function turning a writer record into the reader's, or None if types differ."""
    if _has_named_reference(writer) or _has_named_reference(reader):
        return None
    written = {f["name"]: f for f in writer.get("fields", [])}
    missing: list[tuple[str, Any, bool]] = []  # name, default, mutable
    for field in reader.get("fields", []):
        source = written.get(field["name"])
        if source is not None:
            if _canonical(source["type"]) != _canonical(field["type"]):
                return None
            continue
        if "default" not in field or _default_kind(field["type"]) not in _SIMPLE_DEFAULT_KINDS:
            return None
        default = field["default"]
        missing.append((field["name"], default, isinstance(default, dict | list)))
    known = {f["name"] for f in reader.get("fields", [])}
    extra = [name for name in written if name not in known]

    def shape(record: Record) -> Record:
        for name in extra:
            del record[name]
        for name, default, mutable in missing:
            record[name] = copy.deepcopy(default) if mutable else default
        return record

    return shape


def _compiled(writer: Record) -> Decoder | None:
    try:
        return compile_native(writer)[1]
    except Unsupported:
        pass
    try:
        return compile_decoder(writer)
    except Unsupported:
        return None


def _fast(decode: Decoder, shape: Callable[[Record], Record], name: str) -> BodyDecoder:
    def read(data: bytes, offset: int) -> Record:
        try:
            record, end = decode(data, offset)
        except TRUNCATED:
            raise truncated(name) from None
        except INVALID as exc:
            raise undecodable(name, exc) from None
        if end != len(data):
            raise trailing(name, len(data) - end)
        return shape(record)

    return read


def _general(
    writer_parsed: Any, reader_parsed: Any, name: str, strict: BodyDecoder | None
) -> BodyDecoder:
    """fastavro's resolution; ``strict`` first refuses what our own decoders refuse
    (fastavro accepts out-of-range ints and overlong varints)."""

    def read(data: bytes, offset: int) -> Record:
        if strict is not None:
            strict(data, offset)
        return read_with_fastavro(data, offset, writer_parsed, reader_parsed, name)

    return read


def resolving_decoder(
    writer: Record, writer_parsed: Any, reader: Record, reader_parsed: Any, name: str
) -> tuple[BodyDecoder, str]:
    """A decoder of ``writer`` bodies into ``reader`` records, and which path it takes."""
    shape = _shape(writer, reader)
    compiled = _compiled(writer)
    if shape is not None and compiled is not None:
        return _fast(compiled, shape, name), "compiled"
    strict = _fast(compiled, lambda record: record, name) if compiled is not None else None
    return _general(writer_parsed, reader_parsed, name, strict), "fastavro"
