"""Reading an Avro schema the way the codec generators do (Python and C alike).

The generators handle null, boolean, int, long, float, double, bytes, string,
enum, record (nested), array, map, fixed, and unions of ``null`` with one other
type; anything else raises :class:`Unsupported` and the caller keeps fastavro.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Encoder = Callable[[Mapping[str, Any]], bytes]
Decoder = Callable[[bytes, int], tuple[dict[str, Any], int]]


class Unsupported(Exception):
    """The schema uses a construct the generator does not handle."""


def union_branches(schema: Any) -> tuple[bool, Any]:
    """(nullable, the non-null branch) for a union of null and one type."""
    if isinstance(schema, list):
        others = [s for s in schema if s != "null"]
        if len(schema) == 2 and len(others) == 1:
            return True, others[0]
        raise Unsupported(f"union {schema}")
    return False, schema


def type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return str(schema["type"])
    raise Unsupported(str(schema))


def named_type(schema: Any, named: dict[str, Any]) -> Any:
    """``schema``, or the named type it refers to; a named type is recorded in ``named``."""
    if isinstance(schema, str) and schema in named:
        return named[schema]
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        name = schema["name"]
        named[name] = schema
        namespace = schema.get("namespace")
        if namespace:
            named[f"{namespace}.{name}"] = schema
    return schema
