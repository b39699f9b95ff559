"""Comparators: built-ins and the factory that builds one from config."""

from __future__ import annotations

from typing import Any

from shadowstream.errors import ConfigError
from stream_agents.comparators.base import IDENTICAL, Comparator, Verdict
from stream_agents.comparators.exact import ExactComparator
from stream_agents.comparators.json_diff import JsonComparator

__all__ = [
    "IDENTICAL",
    "Comparator",
    "ExactComparator",
    "JsonComparator",
    "Verdict",
    "build_comparator",
]


def build_comparator(kind: str, options: dict[str, Any] | None = None) -> Comparator:
    """Build a comparator from its config name and options; errors are ConfigError."""
    options = dict(options or {})
    factories: dict[str, Any] = {
        "exact": ExactComparator,
        "json": JsonComparator,
    }
    factory = factories.get(kind)
    if factory is None:
        raise ConfigError(f"unknown comparator {kind!r} (known: {', '.join(sorted(factories))})")
    try:
        comparator: Comparator = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for comparator {kind!r}: {exc}") from None
    return comparator
