"""Which items of a source a run takes: endpoint globs, attribute values, a sample.

The same filter runs as SQL on captured traffic (bound parameters only) and in
Python on eval files. Endpoint patterns know two wildcards, ``*`` (any run of
characters) and ``?`` (one character), so the SQL ``LIKE`` form and the
Python form match exactly the same endpoints.

Sampling is deterministic by item id: ``--fraction 0.1`` picks the same tenth
of the items every time (captured traffic: ``cityHash64(request_id)``; eval
files: a blake2b hash of the item id), so a resumed run sees the same sample.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shadowstream.core.errors import ExperimentError
from shadowstream.experiments.items import BatchItem

FRACTION_SCALE = 1_000_000  # fractions are applied in parts per million
_TWO_64 = float(1 << 64)


def parse_attribute_filters(pairs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["language=de", "language=fr", "tier=pro"]`` -> ``{language: (de, fr), tier: (pro,)}``.

    Values of one attribute are alternatives (OR); different attributes must
    all match (AND).
    """
    out: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ExperimentError(f"--attr expects NAME=VALUE, got {pair!r}")
        values = out.setdefault(key, [])
        if value not in values:
            values.append(value)
    return {k: tuple(v) for k, v in out.items()}


def glob_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def glob_to_like(pattern: str) -> str:
    """The same pattern as a SQL LIKE pattern (``%``, ``_`` and ``\\`` escaped)."""
    out = []
    for c in pattern:
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c in "%_\\":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def sample_point(source_id: str) -> float:
    """An item's position in [0, 1): stable across runs and processes."""
    digest = hashlib.blake2b(source_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _TWO_64


@dataclass(frozen=True)
class ItemFilter:
    endpoints: tuple[str, ...] = ()  # glob patterns; empty: every endpoint
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fraction: float = 1.0
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ExperimentError(f"--fraction must be in (0, 1], got {self.fraction}")
        if self.limit is not None and self.limit < 1:
            raise ExperimentError(f"--limit must be at least 1, got {self.limit}")
        for pattern in self.endpoints:
            if not pattern:
                raise ExperimentError("--endpoint must not be empty")

    @property
    def fraction_ppm(self) -> int:
        return round(self.fraction * FRACTION_SCALE)

    def endpoint_matches(self, endpoint: str) -> bool:
        return not self.endpoints or any(glob_regex(p).fullmatch(endpoint) for p in self.endpoints)

    def matches(self, item: BatchItem) -> bool:
        """Endpoint, attributes and the fraction sample (the limit is the source's job)."""
        if not self.endpoint_matches(item.endpoint):
            return False
        for key, values in self.attributes.items():
            if item.attributes.get(key, "") not in values:
                return False
        return self.fraction >= 1.0 or sample_point(item.source_id) < self.fraction

    def describe(self) -> str:
        parts = []
        if self.endpoints:
            parts.append("endpoint " + "|".join(self.endpoints))
        for key, values in self.attributes.items():
            parts.append(f"{key}={'|'.join(values)}")
        if self.fraction < 1.0:
            parts.append(f"{self.fraction:g} sample")
        if self.limit is not None:
            parts.append(f"at most {self.limit:,}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoints": list(self.endpoints),
            "attributes": {k: list(v) for k, v in self.attributes.items()},
            "fraction": self.fraction,
            "limit": self.limit,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemFilter:
        return cls(
            endpoints=tuple(data.get("endpoints") or ()),
            attributes={k: tuple(v) for k, v in (data.get("attributes") or {}).items()},
            fraction=float(data.get("fraction", 1.0)),
            limit=data.get("limit"),
        )
