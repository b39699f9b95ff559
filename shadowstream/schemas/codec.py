"""Avro single-object encoding (spec 1.8+) with fastavro, schemas parsed once.

Wire format::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
          | Parsing Canonical Form | Avro binary body

A reader looks the fingerprint up in a :class:`SchemaRegistry` (every schema
version this code base knows, no registry server needed) and resolves the
writer's schema to its own reader schema by Avro's evolution rules, so a reader
with a newer schema reads older events.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from shadowstream.core.errors import MalformedEventError, SchemaError, UnknownSchemaError
from shadowstream.schemas.fastcodec import (
    Decoder,
    Unsupported,
    compile_decoder,
    compile_encoder,
    compile_native,
    compile_native_check,
)

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10

Record = dict[str, Any]


def load_schema(name: str) -> dict[str, Any]:
    """Load ``shadowstream/schemas/avro/<name>.avsc`` shipped with the package."""
    text = (
        resources.files("shadowstream.schemas").joinpath("avro", f"{name}.avsc").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8 bytes that follow the magic in single-object encoding (little-endian)."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema, _write_hint=False))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


class SchemaRegistry:
    """Every writer schema this process can read, by fingerprint."""

    def __init__(self) -> None:
        self._by_fingerprint: dict[bytes, tuple[str, Any]] = {}
        self._schemas: dict[bytes, dict[str, Any]] = {}

    def register(self, schema: dict[str, Any]) -> bytes:
        fp = schema_fingerprint(schema)
        full_name = _full_name(schema)
        self._by_fingerprint[fp] = (full_name, fastavro.parse_schema(schema))
        self._schemas[fp] = schema
        return fp

    def schema(self, fp: bytes) -> dict[str, Any]:
        """The writer schema registered under ``fp``, as it was given."""
        try:
            return self._schemas[fp]
        except KeyError:
            raise UnknownSchemaError(fp) from None

    def lookup(self, fp: bytes) -> tuple[str, Any]:
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise UnknownSchemaError(fp) from None

    def __contains__(self, fp: bytes) -> bool:
        return fp in self._by_fingerprint

    def names(self) -> dict[bytes, str]:
        return {fp: name for fp, (name, _) in self._by_fingerprint.items()}


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return f"{namespace}.{name}" if namespace and "." not in name else name


# auto: C if the extension is built, else generated Python, else fastavro.
BACKENDS = ("auto", "c", "python", "fastavro")


class EventCodec:
    """Encode/decode one event type; decode resolves older writer versions.

    ``backend`` picks the body codec for this schema's own version (older
    writer versions always go through fastavro's schema resolution).
    """

    def __init__(
        self,
        schema: dict[str, Any],
        registry: SchemaRegistry | None = None,
        older_versions: Iterable[dict[str, Any]] = (),
        *,
        backend: str = "auto",
    ) -> None:
        self.schema = schema
        self.name = _full_name(schema)
        self.registry = registry if registry is not None else SchemaRegistry()
        self.fingerprint = self.registry.register(schema)
        for old in older_versions:
            self.registry.register(old)
        self._parsed = fastavro.parse_schema(schema)
        self._header = MAGIC + self.fingerprint
        self._resolved: dict[bytes, Any] = {}
        # strict body decoders of older writer schemas: fastavro resolves them to this
        # version, but accepts out-of-range ints and overlong varints (None: unsupported)
        self._strict: dict[bytes, Decoder | None] = {}
        self._fast_encode: Callable[[Record, bytes], bytes] | None = None
        self._fast_decode: Decoder | None = None
        self._fast_check: Callable[[bytes, int], int] | None = None
        self.backend = "fastavro"
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
        if backend in ("auto", "c"):
            try:  # C (shadowstream/schemas/_cavro.c): ~3-6x faster than the generated Python
                self._fast_encode, self._fast_decode = compile_native(schema)
                self._fast_check = compile_native_check(schema)
                self.backend = "c"
            except Unsupported:
                if backend == "c":
                    raise
        if backend == "python" or (backend == "auto" and self.backend == "fastavro"):
            try:  # generated straight-line Python, ~2x faster than fastavro
                encode = compile_encoder(schema)
                self._fast_encode = lambda record, header: header + encode(record)
                self._fast_decode = compile_decoder(schema)
                self.backend = "python"
            except Unsupported:
                if backend == "python":
                    raise

    # -- encoding -------------------------------------------------------------
    def encode(self, record: Record) -> bytes:
        if self._fast_encode is not None:
            try:
                return self._fast_encode(record, self._header)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                raise SchemaError(
                    f"cannot encode {self.name}: {type(exc).__name__}: {exc}"
                ) from None
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self._parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SchemaError(f"cannot encode {self.name}: {exc}") from None
        return buf.getvalue()

    # -- decoding -------------------------------------------------------------
    def decode(self, data: bytes) -> Record:
        """Decode one event, resolving the writer's schema from its fingerprint.

        Raises MalformedEventError (not Avro / truncated / wrong event type) or
        UnknownSchemaError (a fingerprint no registered schema has).
        """
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise MalformedEventError(
                "not an Avro single-object encoded event (bad magic)", "not_avro"
            )
        fp = data[2:HEADER_SIZE]
        if fp == self.fingerprint and self._fast_decode is not None:
            return self._decode_strict(self._fast_decode, data)
        if fp != self.fingerprint:
            self._validate_older(fp, data)
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            if fp == self.fingerprint:
                decoded = fastavro.schemaless_reader(buf, self._parsed, None)
            else:
                decoded = fastavro.schemaless_reader(buf, self._writer_for(fp), self._parsed)
        except (SchemaError, UnknownSchemaError):
            raise
        except EOFError:
            raise MalformedEventError(f"truncated {self.name} body", "truncated") from None
        except Exception as exc:  # fastavro raises many types on garbage bodies
            raise MalformedEventError(
                f"undecodable {self.name} body: {type(exc).__name__}: {exc}", "invalid"
            ) from None
        if buf.tell() != len(data):
            raise MalformedEventError(
                f"{len(data) - buf.tell()} trailing bytes after the {self.name} body", "invalid"
            )
        if not isinstance(decoded, dict):
            raise MalformedEventError(f"{self.name} body is not a record", "invalid")
        return decoded

    def validate(self, data: bytes) -> None:
        """Raise what :meth:`decode` would raise for ``data``, without building the record
        when the C codec can walk it (a few times cheaper): for a stage that stores the
        bytes as they are, but must refuse exactly what the others refuse."""
        check = self._fast_check
        if check is None or len(data) < HEADER_SIZE or data[:2] != MAGIC:
            self.decode(data)
            return
        if data[2:HEADER_SIZE] != self.fingerprint:
            self.decode(data)
            return
        try:
            end = check(data, HEADER_SIZE)
        except (IndexError, EOFError, struct.error):
            raise MalformedEventError(f"truncated {self.name} body", "truncated") from None
        except (ValueError, UnicodeDecodeError, KeyError, OverflowError) as exc:
            raise MalformedEventError(
                f"undecodable {self.name} body: {type(exc).__name__}: {exc}", "invalid"
            ) from None
        if end != len(data):
            raise MalformedEventError(
                f"{len(data) - end} trailing bytes after the {self.name} body", "invalid"
            )

    def _decode_strict(self, decode: Decoder, data: bytes) -> Record:
        """The body through one of our strict decoders (C or generated Python)."""
        try:
            record, end = decode(data, HEADER_SIZE)
        except (IndexError, EOFError, struct.error):
            raise MalformedEventError(f"truncated {self.name} body", "truncated") from None
        except (ValueError, UnicodeDecodeError, KeyError, OverflowError) as exc:
            raise MalformedEventError(
                f"undecodable {self.name} body: {type(exc).__name__}: {exc}", "invalid"
            ) from None
        if end != len(data):
            raise MalformedEventError(
                f"{len(data) - end} trailing bytes after the {self.name} body", "invalid"
            )
        return record

    def _validate_older(self, fp: bytes, data: bytes) -> None:
        """Reject an older writer's body that our strict decoders refuse (before fastavro
        resolves it): the same range and canonical-varint rules as the current version."""
        self._writer_for(fp)  # unknown fingerprint / wrong event type first
        if fp not in self._strict:
            self._strict[fp] = _strict_decoder(self.registry.schema(fp))
        decode = self._strict[fp]
        if decode is not None:
            self._decode_strict(decode, data)

    def _writer_for(self, fp: bytes) -> Any:
        cached = self._resolved.get(fp)
        if cached is not None:
            return cached
        name, writer = self.registry.lookup(fp)
        if name.split(".")[-1] != self.name.split(".")[-1]:
            raise MalformedEventError(
                f"expected a {self.name} event, got a {name} event", "wrong_event_type"
            )
        self._resolved[fp] = writer
        return writer

    def header_fingerprint(self, data: bytes) -> bytes | None:
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            return None
        return bytes(data[2:HEADER_SIZE])


def _strict_decoder(schema: dict[str, Any]) -> Decoder | None:
    try:
        return compile_native(schema)[1]
    except Unsupported:
        pass
    try:
        return compile_decoder(schema)
    except Unsupported:
        return None


def default_registry() -> SchemaRegistry:
    return _REGISTRY


_REGISTRY = SchemaRegistry()
REQUEST = EventCodec(load_schema("request_event"), _REGISTRY)
RESPONSE = EventCodec(load_schema("response_event"), _REGISTRY)
COMPARISON = EventCodec(load_schema("comparison_event"), _REGISTRY)
DEAD_LETTER = EventCodec(load_schema("dead_letter_event"), _REGISTRY)
STATS = EventCodec(load_schema("stats_event"), _REGISTRY)
