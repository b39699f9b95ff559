"""Avro single-object encoding (spec 1.8+) with fastavro, schemas parsed once.

Wire format::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
          | Parsing Canonical Form | Avro binary body

A reader looks the fingerprint up in a :class:`SchemaRegistry` and resolves
the writer's schema to its own reader schema by Avro's evolution rules. The
registry knows every version this code base shipped (``avro/history``), so a
reader with a newer schema reads older events; a fingerprint it has never
seen (a *newer* writer) is looked up in the sources attached to it, such as
the schema topic (:mod:`shadowstream.schemas.topic`), so an older reader reads
newer events too. Compatibility rules: docs/schemas.md.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any, Generic, Protocol, TypeVar, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from shadowstream.core.errors import (
    IncompatibleSchemaError,
    MalformedEventError,
    SchemaError,
    UnknownSchemaError,
)
from shadowstream.schemas.body_errors import (
    INVALID,
    TRUNCATED,
    read_with_fastavro,
    trailing,
    truncated,
    undecodable,
)
from shadowstream.schemas.compat import read_problems
from shadowstream.schemas.fastcodec import compile_encoder
from shadowstream.schemas.fastdecoder import compile_decoder
from shadowstream.schemas.native import compile_native, compile_native_check
from shadowstream.schemas.records import (
    ComparisonEvent,
    DeadLetterEvent,
    RequestEvent,
    ResponseEvent,
    StatsEvent,
)
from shadowstream.schemas.resolve import resolving_decoder
from shadowstream.schemas.schema_shapes import Unsupported

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10

Record = dict[str, Any]
# the event type a codec encodes and decodes: a TypedDict of shadowstream.schemas.records
R = TypeVar("R", bound=Mapping[str, Any])


def load_schema(name: str) -> dict[str, Any]:
    """Load ``shadowstream/schemas/avro/<name>.avsc`` shipped with the package."""
    text = (
        resources.files("shadowstream.schemas").joinpath("avro", f"{name}.avsc").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_history(name: str) -> list[dict[str, Any]]:
    """Earlier versions of ``<name>``, oldest first (``avro/history/<name>.v<N>.avsc``)."""
    folder = resources.files("shadowstream.schemas").joinpath("avro", "history")
    found: list[tuple[int, dict[str, Any]]] = []
    pattern = re.compile(rf"^{re.escape(name)}\.v(\d+)\.avsc$")
    if folder.is_dir():
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match:
                found.append((int(match.group(1)), json.loads(entry.read_text("utf-8"))))
    return [schema for _, schema in sorted(found, key=lambda item: item[0])]


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8 bytes that follow the magic in single-object encoding (little-endian)."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema, _write_hint=False))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


class SchemaSource(Protocol):
    """Somewhere to find a writer schema this process has never seen (e.g. the schema topic)."""

    def fetch(self, fingerprint: bytes) -> dict[str, Any] | None:
        """The schema with this fingerprint, or None if there is none (yet)."""
        ...


class SchemaRegistry:
    """Every writer schema this process can read, by fingerprint.

    Schemas registered locally (this code base's versions) are known at once;
    others are fetched from the attached sources on first sight and kept.
    """

    def __init__(self) -> None:
        self._by_fingerprint: dict[bytes, tuple[str, Any, dict[str, Any]]] = {}
        self._sources: list[SchemaSource] = []
        self._lock = threading.Lock()

    def register(self, schema: dict[str, Any]) -> bytes:
        fp = schema_fingerprint(schema)
        full_name = _full_name(schema)
        self._by_fingerprint[fp] = (full_name, fastavro.parse_schema(schema), schema)
        return fp

    def attach(self, source: SchemaSource) -> None:
        """Look unknown fingerprints up in ``source`` too (after those attached before)."""
        with self._lock:
            if source not in self._sources:
                self._sources.append(source)

    def detach(self, source: SchemaSource) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)

    def entry(self, fp: bytes) -> tuple[str, Any, dict[str, Any]]:
        """(full name, parsed schema, schema JSON) of a writer; raises UnknownSchemaError."""
        found = self._by_fingerprint.get(fp)
        if found is not None:
            return found
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            schema = source.fetch(fp)
            if schema is None:
                continue
            try:
                if schema_fingerprint(schema) != fp:
                    continue  # a source must not be able to redefine a fingerprint
                self.register(schema)
            except Exception:  # not a schema fastavro accepts
                continue
            return self._by_fingerprint[fp]
        raise UnknownSchemaError(fp)

    def lookup(self, fp: bytes) -> tuple[str, Any]:
        name, parsed, _ = self.entry(fp)
        return name, parsed

    def schema(self, fp: bytes) -> dict[str, Any]:
        """The writer schema registered under ``fp``, as it was given."""
        return self.entry(fp)[2]

    def __contains__(self, fp: bytes) -> bool:
        return fp in self._by_fingerprint

    def names(self) -> dict[bytes, str]:
        return {fp: name for fp, (name, _, _) in self._by_fingerprint.items()}

    def schemas(self) -> dict[bytes, dict[str, Any]]:
        return {fp: schema for fp, (_, _, schema) in self._by_fingerprint.items()}


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return f"{namespace}.{name}" if namespace and "." not in name else name


# auto: C if the extension is built, else generated Python, else fastavro.
BACKENDS = ("auto", "c", "python", "fastavro")


class EventCodec(Generic[R]):
    """Encode/decode one event type; decode resolves other writer versions.

    ``backend`` picks the body codec for this schema's own version. Events of
    another version (older, or newer and found through the registry's
    sources) are checked once for compatibility, then decoded with the
    writer's compiled codec and shaped like this version's record when the
    two differ only by added/removed fields (:mod:`shadowstream.schemas.resolve`),
    else with fastavro's schema resolution. ``version`` counts this schema's
    versions: 1 + the number of ``older_versions``.

    The codec is typed by its event (``EventCodec[RequestEvent]``): ``encode`` takes
    and ``decode`` returns that TypedDict (:mod:`shadowstream.schemas.records`).
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
        self.version = 1
        for old in older_versions:
            self.registry.register(old)
            self.version += 1
        self._parsed = fastavro.parse_schema(schema)
        self._header = MAGIC + self.fingerprint
        self._resolved: dict[bytes, Callable[[bytes, int], R]] = {}
        self.resolution_paths: dict[bytes, str] = {}  # writer fingerprint -> compiled | fastavro
        self._fast_encode: Callable[[R, bytes], bytes] | None = None
        self._fast_decode: Callable[[bytes, int], tuple[R, int]] | None = None
        # walks a body with the C decoder's checks without building the record (validate)
        self._fast_check: Callable[[bytes, int], int] | None = None
        self.backend = "fastavro"
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
        if backend in ("auto", "c"):
            try:  # C (shadowstream/schemas/_cavro.c): ~3-6x faster than the generated Python
                self._fast_encode, native_decode = compile_native(schema)
                self._fast_decode = cast("Callable[[bytes, int], tuple[R, int]]", native_decode)
                self._fast_check = compile_native_check(schema)
                self.backend = "c"
            except Unsupported:
                if backend == "c":
                    raise
        if backend == "python" or (backend == "auto" and self.backend == "fastavro"):
            try:  # generated straight-line Python, ~2x faster than fastavro
                encode = compile_encoder(schema)
                self._fast_encode = lambda record, header: header + encode(record)
                self._fast_decode = cast(
                    "Callable[[bytes, int], tuple[R, int]]", compile_decoder(schema)
                )
                self.backend = "python"
            except Unsupported:
                if backend == "python":
                    raise

    # -- encoding -------------------------------------------------------------
    def encode(self, record: R) -> bytes:
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
    def decode(self, data: bytes) -> R:
        """Decode one event, resolving the writer's schema from its fingerprint.

        Raises MalformedEventError (not Avro / truncated / wrong event type),
        UnknownSchemaError (a fingerprint neither registered nor found in the
        registry's sources) or IncompatibleSchemaError (a writer version this
        one cannot read).
        """
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise MalformedEventError(
                "not an Avro single-object encoded event (bad magic)", "not_avro"
            )
        fp = data[2:HEADER_SIZE]
        if fp == self.fingerprint and self._fast_decode is not None:
            return self._decode_strict(self._fast_decode, data)
        if fp == self.fingerprint:  # this version, without a compiled codec
            return self._read_own(data)
        decoder = self._resolved.get(fp)
        if decoder is None:
            decoder = self._decoder_for(bytes(fp))
        return decoder(data, HEADER_SIZE)

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
        except TRUNCATED:
            raise truncated(self.name) from None
        except INVALID as exc:
            raise undecodable(self.name, exc) from None
        if end != len(data):
            raise trailing(self.name, len(data) - end)

    def _decode_strict(self, decode: Callable[[bytes, int], tuple[R, int]], data: bytes) -> R:
        """The body through one of our strict decoders (C or generated Python)."""
        try:
            record, end = decode(data, HEADER_SIZE)
        except TRUNCATED:
            raise truncated(self.name) from None
        except INVALID as exc:
            raise undecodable(self.name, exc) from None
        if end != len(data):
            raise trailing(self.name, len(data) - end)
        return record

    def _read_own(self, data: bytes) -> R:
        return cast(R, read_with_fastavro(data, HEADER_SIZE, self._parsed, None, self.name))

    def _decoder_for(self, fp: bytes) -> Callable[[bytes, int], R]:
        """Build (once) the decoder of another writer version; raises if there is none."""
        name, writer_parsed, writer = self.registry.entry(fp)
        if name.split(".")[-1] != self.name.split(".")[-1]:
            raise MalformedEventError(
                f"expected a {self.name} event, got a {name} event", "wrong_event_type"
            )
        problems = read_problems(writer, self.schema)
        if problems:
            raise IncompatibleSchemaError(
                f"{self.name} writer schema {fp.hex()} cannot be read as this version: "
                + "; ".join(problems[:5]),
                problems,
            )
        decoder, path = resolving_decoder(
            writer, writer_parsed, self.schema, self._parsed, self.name
        )
        self._resolved[fp] = typed = cast("Callable[[bytes, int], R]", decoder)
        self.resolution_paths[fp] = path
        return typed

    def header_fingerprint(self, data: bytes) -> bytes | None:
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            return None
        return bytes(data[2:HEADER_SIZE])


def default_registry() -> SchemaRegistry:
    return _REGISTRY


def shipped_codec(name: str, registry: SchemaRegistry) -> EventCodec[Any]:
    """The codec of ``avro/<name>.avsc``, knowing every earlier version shipped."""
    return EventCodec(load_schema(name), registry, load_history(name))


_REGISTRY = SchemaRegistry()
REQUEST: EventCodec[RequestEvent] = shipped_codec("request_event", _REGISTRY)
RESPONSE: EventCodec[ResponseEvent] = shipped_codec("response_event", _REGISTRY)
COMPARISON: EventCodec[ComparisonEvent] = shipped_codec("comparison_event", _REGISTRY)
DEAD_LETTER: EventCodec[DeadLetterEvent] = shipped_codec("dead_letter_event", _REGISTRY)
STATS: EventCodec[StatsEvent] = shipped_codec("stats_event", _REGISTRY)
CODECS: tuple[EventCodec[Any], ...] = (REQUEST, RESPONSE, COMPARISON, DEAD_LETTER, STATS)
