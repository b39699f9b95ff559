"""An eval set: JSON Lines or an Avro object container file.

One item per line (JSONL) or per record (Avro)::

    {"id": "q-17", "input": {"text": "where is my parcel"},
     "reference": {"label": "shipping"},
     "endpoint": "/v1/classify", "attributes": {"language": "en"}}

* ``input``: the input, any JSON value; or ``payload``: the input as JSON
  text (as a RequestEvent carries it). Exactly one of them.
* ``reference`` (optional): the expected output, any JSON value (``null``
  means none); or ``output``: it as JSON text. The reference plays the
  champion's role: it is submitted as the champion's response
  (model ``reference_model``, latency ``reference_latency_ms`` or 0).
* ``id`` (optional, string or integer): stable item id; default the line or
  record number (1-based). Ids must be unique in the file.
* ``endpoint``, ``attributes``, ``service``, ``reference_model``,
  ``reference_latency_ms``: optional; other fields are ignored.

:meth:`EvalFile.scan` reads the whole file once before anything is
submitted, so a malformed line stops the run before it starts, with its line
number; its SHA-256 is stored with the run and checked on ``--resume``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import orjson

from shadowstream.core.errors import ExperimentError
from shadowstream.experiments.filters import ItemFilter
from shadowstream.experiments.ids import check_source_id
from shadowstream.experiments.items import REFERENCE_MODEL, BatchItem, Reference, to_json

AVRO_MAGIC = b"Obj\x01"
DEFAULT_ENDPOINT = "eval"
DEFAULT_SERVICE = "eval"


@dataclass(frozen=True)
class ScanResult:
    items: int  # after filters and limit
    with_reference: int
    sha256: str


@dataclass(frozen=True)
class ItemDefaults:
    endpoint: str = DEFAULT_ENDPOINT
    reference_model: str = REFERENCE_MODEL


def detect_format(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise ExperimentError(f"cannot read {path}: {exc.strerror or exc}") from None
    return "avro" if head == AVRO_MAGIC else "jsonl"


def _text(value: Any, what: str, where: str) -> str:
    if isinstance(value, str):
        return value
    raise ExperimentError(f"{where}: {what} must be a string, got {type(value).__name__}")


def _optional_float(record: Mapping[str, Any], key: str, where: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExperimentError(f"{where}: {key} must be a number")
    return float(value)


def item_from_record(
    record: Any, position: int, where: str, defaults: ItemDefaults = ItemDefaults()
) -> BatchItem:
    """One eval record -> a BatchItem; ``where`` (e.g. ``evals.jsonl:17``) prefixes errors."""
    if not isinstance(record, Mapping):
        raise ExperimentError(f"{where}: expected an object, got {type(record).__name__}")
    raw_id = record.get("id")
    if raw_id is None:
        source_id = str(position)
    elif isinstance(raw_id, str) or (isinstance(raw_id, int) and not isinstance(raw_id, bool)):
        source_id = str(raw_id)
    else:
        raise ExperimentError(f"{where}: id must be a string or an integer")
    check_source_id(source_id, where)

    if ("input" in record) == ("payload" in record):
        raise ExperimentError(
            f"{where}: give exactly one of 'input' (a value) or 'payload' (JSON text)"
        )
    payload = (
        to_json(record["input"])
        if "input" in record
        else _text(record["payload"], "payload", where)
    )

    if "reference" in record and "output" in record:
        raise ExperimentError(f"{where}: give at most one of 'reference' or 'output'")
    output: str | None = None
    if record.get("reference") is not None:
        output = to_json(record["reference"])
    elif record.get("output") is not None:
        output = _text(record["output"], "output", where)
    model = record.get("reference_model") or defaults.reference_model
    model = _text(model, "reference_model", where)
    latency = _optional_float(record, "reference_latency_ms", where)
    reference = (
        None if output is None else Reference(output=output, model=model, latency_ms=latency or 0.0)
    )

    attributes = record.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise ExperimentError(f"{where}: attributes must be an object of strings")
    return BatchItem(
        source_id=source_id,
        endpoint=_text(record.get("endpoint") or defaults.endpoint, "endpoint", where),
        payload=payload,
        service=_text(record.get("service") or DEFAULT_SERVICE, "service", where),
        champion_model=model,
        attributes={str(k): str(v) for k, v in attributes.items() if v is not None},
        reference=reference,
    )


@dataclass(frozen=True)
class EvalFile:
    path: Path
    filter: ItemFilter = field(default_factory=ItemFilter)
    defaults: ItemDefaults = field(default_factory=ItemDefaults)
    expected_sha256: str | None = None  # set on resume: the file must not have changed
    kind: str = "eval"

    # -- the protocol ---------------------------------------------------------------
    def describe(self) -> str:
        detail = self.filter.describe()
        text = f"eval file {self.path} ({self.format})"
        return f"{text}, {detail}" if detail else text

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "sha256": self.scan().sha256,
            "endpoint": self.defaults.endpoint,
            "reference_model": self.defaults.reference_model,
            "filter": self.filter.to_json(),
        }

    def count(self) -> int:
        return self.scan().items

    def pages(self, page_size: int = 2_000) -> Iterator[list[BatchItem]]:
        page: list[BatchItem] = []
        for item in self._selected():
            page.append(item)
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    # -- reading --------------------------------------------------------------------
    @cached_property
    def format(self) -> str:
        return detect_format(self.path)

    def scan(self) -> ScanResult:
        """Validate every record, count the selected ones, hash the file (once per instance)."""
        return self._scanned

    @cached_property
    def _scanned(self) -> ScanResult:
        sha = self._sha256()
        if self.expected_sha256 is not None and sha != self.expected_sha256:
            raise ExperimentError(
                f"{self.path} changed since the run started (SHA-256 differs): resuming would "
                "mix two eval sets; restore the file or start a new experiment"
            )
        seen: set[str] = set()
        for item, where in self._all_items():
            if item.source_id in seen:
                raise ExperimentError(f"{where}: duplicate id {item.source_id!r}")
            seen.add(item.source_id)
        items = with_reference = 0
        for item in self._selected():
            items += 1
            with_reference += item.reference is not None
        return ScanResult(items, with_reference, sha)

    def _selected(self) -> Iterator[BatchItem]:
        taken = 0
        for item, _ in self._all_items():
            if self.filter.limit is not None and taken >= self.filter.limit:
                return
            if self.filter.matches(item):
                taken += 1
                yield item

    def _all_items(self) -> Iterator[tuple[BatchItem, str]]:
        try:
            with self.path.open("rb") as handle:
                if self.format == "avro":
                    yield from self._avro_items(handle)
                else:
                    yield from self._jsonl_items(handle)
        except OSError as exc:
            raise ExperimentError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def _jsonl_items(self, handle: IO[bytes]) -> Iterator[tuple[BatchItem, str]]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{self.path.name}:{number}"
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ExperimentError(f"{where}: invalid JSON ({exc})") from None
            yield item_from_record(record, number, where, self.defaults), where

    def _avro_items(self, handle: IO[bytes]) -> Iterator[tuple[BatchItem, str]]:
        import fastavro

        try:
            reader = fastavro.reader(handle)
            for number, record in enumerate(reader, start=1):
                where = f"{self.path.name} record {number}"
                yield item_from_record(record, number, where, self.defaults), where
        except (ValueError, EOFError, TypeError) as exc:
            raise ExperimentError(
                f"{self.path}: not a readable Avro container file ({exc})"
            ) from None

    def _sha256(self) -> str:
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise ExperimentError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return digest.hexdigest()
