"""The C codec (``shadowstream.schemas._cavro``): a schema as the node tree it compiles.

Where the extension is built (``pip install`` compiles it when a C compiler is
present), :func:`compile_native` gives the codec of
:mod:`shadowstream.schemas.fastcodec` in C, 3-6x faster; that module's generated
Python is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shadowstream.schemas.schema_shapes import (
    Decoder,
    Unsupported,
    named_type,
    type_name,
    union_branches,
)

# Node kinds shared with schemas/_cavro.c.
NATIVE_KINDS = {
    "null": 0,
    "boolean": 1,
    "int": 2,
    "long": 3,
    "float": 4,
    "double": 5,
    "string": 6,
    "bytes": 7,
    "fixed": 8,
    "enum": 9,
    "array": 10,
    "map": 11,
    "record": 12,
}


def native_spec(schema: Any) -> tuple[Any, ...]:
    """The schema as the (kind, nullable, extra) tree that ``shadowstream.schemas._cavro`` compiles."""
    return _spec(schema, {}, frozenset())


def _spec(schema: Any, named: dict[str, Any], open_records: frozenset[str]) -> tuple[Any, ...]:
    schema = named_type(schema, named)
    nullable, inner = union_branches(schema)
    null_code = 0
    if nullable:
        null_code = 1 if schema[0] == "null" else 2
    inner = named_type(inner, named)
    kind = type_name(inner)
    if kind not in NATIVE_KINDS:
        raise Unsupported(kind)
    code = NATIVE_KINDS[kind]
    extra: Any = None
    if kind == "fixed":
        extra = int(inner["size"])
    elif kind == "enum":
        extra = tuple(inner["symbols"])
    elif kind == "array":
        extra = _spec(inner["items"], named, open_records)
    elif kind == "map":
        extra = _spec(inner["values"], named, open_records)
    elif kind == "record":
        name = str(inner["name"])
        if name in open_records:
            raise Unsupported(f"recursive record {name}")
        inside = open_records | {name}
        extra = tuple(
            (
                str(field["name"]),
                "default" in field,
                field.get("default"),
                _spec(field["type"], named, inside),
            )
            for field in inner["fields"]
        )
    return (code, null_code, extra)


def compile_native(schema: dict[str, Any]) -> tuple[Callable[..., bytes], Decoder]:
    """(encode(record, prefix=b""), decode(buf, pos)) in C, or Unsupported if not built."""
    codec = _compiled(schema)
    return codec.encode, codec.decode


def compile_native_check(schema: dict[str, Any]) -> Callable[[bytes, int], int]:
    """``check(buf, pos) -> end`` in C: what the decoder accepts or refuses, with the
    same errors, without building the value (a few times cheaper than decoding)."""
    check: Callable[[bytes, int], int] = _compiled(schema).check
    return check


def _compiled(schema: dict[str, Any]) -> Any:
    """The C codec of a record schema, or Unsupported if it is not one or not built."""
    if schema.get("type") != "record":
        raise Unsupported("top level must be a record")
    try:
        from shadowstream.schemas import _cavro  # type: ignore[attr-defined]
    except ImportError as exc:
        raise Unsupported(f"the C extension is not built ({exc})") from None
    return _cavro.compile(native_spec(schema))


def native_available() -> bool:
    try:
        from shadowstream.schemas import _cavro  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True
