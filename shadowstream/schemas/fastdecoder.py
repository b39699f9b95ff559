"""Avro binary decoders generated per schema: strict, straight-line Python.

The generated decoder refuses exactly what the C codec (``_cavro.c``) refuses:
truncated input, values outside their type's range, non-canonical varints, and
block counts the bytes left cannot hold. See :mod:`shadowstream.schemas.fastcodec`
for why the codecs are generated.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from shadowstream.schemas.codegen import CodeGen
from shadowstream.schemas.schema_shapes import (
    Decoder,
    Unsupported,
    named_type,
    type_name,
    union_branches,
)
from shadowstream.schemas.varint import read_int, read_long

# Most items of no bytes (null, an empty record) one array or map may hold: the bytes
# left cannot bound them, and a few bytes could otherwise claim billions; as _cavro.c
ZERO_SIZE_ITEMS_LIMIT = 1 << 20

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


def _dec_long(g: CodeGen, target: str, indent: int, reader: str = "read_long") -> None:
    # a one-byte varint is always canonical and fits an int
    g.emit(indent, "c = b[pos]")
    g.emit(indent, "if c < 0x80:")
    g.emit(indent + 1, f"{target} = (c >> 1) ^ -(c & 1)")
    g.emit(indent + 1, "pos += 1")
    g.emit(indent, "else:")
    g.emit(indent + 1, f"{target}, pos = {reader}(b, pos)")


def min_size(schema: Any, named: dict[str, Any]) -> int:
    """Fewest bytes a value of ``schema`` takes: bounds a forged block count (as in _cavro.c)."""
    schema = named_type(schema, named)
    nullable, inner = union_branches(schema)
    if nullable:
        return 1
    inner = named_type(inner, named)
    kind = type_name(inner)
    if kind == "null":
        return 0
    if kind == "float":
        return 4
    if kind == "double":
        return 8
    if kind == "fixed":
        return int(inner["size"])
    if kind == "record":
        return sum(min_size(f["type"], named) for f in inner["fields"])
    return 1


def _dec_block_count(g: CodeGen, count: str, item: Any, indent: int, named: dict[str, Any]) -> str:
    """Read one block count of an array/map into ``count`` (after the caller's 0 check);
    returns the variable holding where the block must end (-1: no byte size given)."""
    end = g.var("bend")
    g.emit(indent, f"{end} = -1")
    g.emit(indent, f"if {count} < 0:")
    g.emit(indent + 1, f"if {count} == {-(1 << 63)}: raise ValueError('implausible block count')")
    g.emit(indent + 1, f"{count} = -{count}")
    size = g.var("sz")
    _dec_long(g, size, indent + 1)
    g.emit(indent + 1, f"if {size} < 0: raise ValueError('negative block size')")
    g.emit(indent + 1, f"if {size} > blen - pos: raise EOFError")
    g.emit(indent + 1, f"{end} = pos + {size}")
    least = min_size(item, named)
    if least > 0:
        g.emit(indent, f"if {count} > (blen - pos) // {least}: raise EOFError")
    else:  # items of no bytes (null) cannot be bounded by the bytes left
        g.emit(indent, f"if {count} > {ZERO_SIZE_ITEMS_LIMIT}:")
        g.emit(indent + 1, "raise ValueError('implausible block count')")
    return end


def _dec_value(g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    schema = named_type(schema, named)
    nullable, inner = union_branches(schema)
    if nullable:
        null_index = 0 if schema[0] == "null" else 2
        g.emit(indent, "c = b[pos]")
        g.emit(indent, "pos += 1")
        g.emit(indent, f"if c == {null_index}:")
        g.emit(indent + 1, f"{target} = None")
        g.emit(indent, f"elif c == {2 - null_index}:")
        _dec_value(g, inner, target, indent + 1, named)
        g.emit(indent, "else:")
        g.emit(indent + 1, "raise ValueError('bad union branch')")
        return
    inner = named_type(inner, named)
    decode = _DECODERS.get(type_name(inner))
    if decode is None:
        raise Unsupported(type_name(inner))
    decode(g, inner, target, indent, named)


def _dec_scalar(g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    kind = type_name(schema)
    if kind == "null":
        g.emit(indent, f"{target} = None")
    elif kind == "boolean":
        g.emit(indent, "c = b[pos]")
        g.emit(indent, "pos += 1")
        g.emit(indent, "if c > 1: raise ValueError('bad boolean')")
        g.emit(indent, f"{target} = c == 1")
    elif kind in ("int", "long"):
        _dec_long(g, target, indent, "read_int" if kind == "int" else "read_long")
    else:  # double, float
        size, unpack = (8, "_unpack_d") if kind == "double" else (4, "_unpack_f")
        g.emit(indent, f"{target} = {unpack}(b, pos)[0]")
        g.emit(indent, f"pos += {size}")


def _dec_sized(g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    """string and bytes: a length, then that many bytes."""
    n = g.var("n")
    _dec_long(g, n, indent)
    g.emit(indent, f"if {n} < 0: raise ValueError('negative length')")
    g.emit(indent, f"end = pos + {n}")
    g.emit(indent, "if end > blen: raise EOFError")
    if type_name(schema) == "string":
        g.emit(indent, f"{target} = b[pos:end].decode()")
    else:
        g.emit(indent, f"{target} = bytes(b[pos:end])")
    g.emit(indent, "pos = end")


def _dec_fixed(g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    size = int(schema["size"])
    g.emit(indent, f"end = pos + {size}")
    g.emit(indent, "if end > blen: raise EOFError")
    g.emit(indent, f"{target} = bytes(b[pos:end])")
    g.emit(indent, "pos = end")


def _dec_enum(g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    symbols = g.const(tuple(schema["symbols"]), "_sym")
    index = g.var("e")
    _dec_long(g, index, indent)
    g.emit(
        indent,
        f"if not 0 <= {index} < {len(schema['symbols'])}: "
        "raise ValueError('enum index out of range')",
    )
    g.emit(indent, f"{target} = {symbols}[{index}]")


def _dec_container(
    g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]
) -> None:
    """array and map: blocks of items (map items are a string key and a value)."""
    is_map = type_name(schema) == "map"
    count, item = g.var("cnt"), g.var("it")
    items = schema["values"] if is_map else schema["items"]
    g.emit(indent, f"{target} = {{}}" if is_map else f"{target} = []")
    total = g.var("tot")
    g.emit(indent, f"{total} = 0")
    g.emit(indent, "while True:")
    _dec_long(g, count, indent + 1)
    g.emit(indent + 1, f"if {count} == 0: break")
    end = _dec_block_count(g, count, items, indent + 1, named)
    if min_size(items, named) == 0:  # bounded over the whole array/map, not per block
        g.emit(indent + 1, f"{total} += {count}")
        g.emit(indent + 1, f"if {total} > {ZERO_SIZE_ITEMS_LIMIT}:")
        g.emit(indent + 2, "raise ValueError('implausible block count')")
    g.emit(indent + 1, f"for _ in range({count}):")
    if is_map:
        key = g.var("k")
        _dec_value(g, "string", key, indent + 2, named)
        _dec_value(g, items, item, indent + 2, named)
        g.emit(indent + 2, f"{target}[{key}] = {item}")
    else:
        _dec_value(g, items, item, indent + 2, named)
        g.emit(indent + 2, f"{target}.append({item})")
    g.emit(indent + 1, f"if {end} >= 0 and pos != {end}:")
    g.emit(indent + 2, "raise ValueError('block size does not match its items')")


def _dec_record(g: CodeGen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    names = []
    for field in schema["fields"]:
        var = g.var("x")
        _dec_value(g, field["type"], var, indent, named)
        names.append((field["name"], var))
    items = ", ".join(f"{name!r}: {var}" for name, var in names)
    g.emit(indent, f"{target} = {{{items}}}")


_DECODERS: dict[str, Callable[[CodeGen, Any, str, int, dict[str, Any]], None]] = {
    **dict.fromkeys(("null", "boolean", "int", "long", "double", "float"), _dec_scalar),
    "string": _dec_sized,
    "bytes": _dec_sized,
    "fixed": _dec_fixed,
    "enum": _dec_enum,
    "array": _dec_container,
    "map": _dec_container,
    "record": _dec_record,
}


def compile_decoder(schema: dict[str, Any]) -> Decoder:
    """``decode(buf, pos) -> (record, end)`` for a record schema.

    Raises IndexError/EOFError/struct.error on truncated input, ValueError or
    UnicodeDecodeError on invalid input (including values outside their type's
    range and non-canonical varints), exactly where _cavro.c does.
    """
    if schema.get("type") != "record":
        raise Unsupported("top level must be a record")
    g = CodeGen()
    g.emit(0, "def decode(b, pos):")
    g.emit(1, "blen = len(b)")
    _dec_value(g, schema, "rec", 1, {})
    g.emit(1, "return rec, pos")
    helpers = {
        "read_long": read_long,
        "read_int": read_int,
        "_unpack_d": _DOUBLE.unpack_from,
        "_unpack_f": _FLOAT.unpack_from,
    }
    decode: Decoder = g.compile("decode", helpers)
    return decode
