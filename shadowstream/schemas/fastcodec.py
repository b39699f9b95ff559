"""Avro binary encoders/decoders generated per schema (plain Python, no per-field calls).

fastavro is general; its per-call overhead (buffer objects, schema dispatch,
named-type bookkeeping) costs 8-12 us per event here, which is most of a
stage's CPU when it handles tens of thousands of events per second. For the
schemas this project owns we generate one straight-line function per record
type, with the common cases (one-byte varints, short strings) inlined and
low-cardinality strings (service, endpoint, model, status, ...) cached as
their encoded bytes. Output and input are byte-for-byte Avro binary, checked
against fastavro in the tests.

Supported: null, boolean, int, long, float, double, bytes, string, enum,
record (nested), array, map, fixed, and unions of ``null`` with one other
type. Anything else raises :class:`Unsupported` and the caller keeps fastavro.

Where the C extension ``shadowstream.schemas._cavro`` is built (``pip install`` compiles it
when a C compiler is present), :func:`compile_native` gives the same codec in
C, 3-6x faster again; this module's generated Python is the fallback.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

# Strings worth caching as encoded bytes: few distinct values, seen on every event.
LOW_CARDINALITY = frozenset(
    {
        "service",
        "endpoint",
        "champion_model",
        "challenger_model",
        "experiment_id",
        "challenger",
        "model",
        "comparator",
        "champion_status",
        "challenger_status",
        "stage",
        "reason",
        "source_topic",
    }
)
_CACHE_LIMIT = 4096
# Most items of no bytes (null, an empty record) one array or map may hold: the bytes
# left cannot bound them, and a few bytes could otherwise claim billions; as _cavro.c
ZERO_SIZE_ITEMS_LIMIT = 1 << 20

Encoder = Callable[[dict[str, Any]], bytes]
Decoder = Callable[[bytes, int], tuple[dict[str, Any], int]]


class Unsupported(Exception):
    """The schema uses a construct the generator does not handle."""


# -- varints ---------------------------------------------------------------------------
def _zigzag_bytes(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ZZ_LOW = -64
_ZZ_TABLE = tuple(_zigzag_bytes(n) for n in range(_ZZ_LOW, 16384))
_ZZ_HIGH = 16384


# Large values (timestamps in microseconds, ~2^51) change only in their low bits
# from one event to the next: the first two varint bytes come from a table,
# the rest from a small cache keyed by the high bits.
_LOW2 = tuple(bytes(((i & 0x7F) | 0x80, ((i >> 7) & 0x7F) | 0x80)) for i in range(1 << 14))
_HIGH_CACHE: dict[int, bytes] = {}


def _varint(z: int) -> bytes:
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def zz(n: int) -> bytes:
    """Avro long (zig-zag varint); small values come from a table."""
    if _ZZ_LOW <= n < _ZZ_HIGH:
        return _ZZ_TABLE[n - _ZZ_LOW]
    if not -(1 << 63) <= n < (1 << 63):
        raise OverflowError(f"{n} does not fit an Avro long")
    z = (n << 1) ^ (n >> 63)
    if z < (1 << 14):  # small negatives: one or two bytes
        return _varint(z)
    high = z >> 14
    tail = _HIGH_CACHE.get(high)
    if tail is None:
        if len(_HIGH_CACHE) >= 4096:
            _HIGH_CACHE.clear()
        tail = _HIGH_CACHE[high] = _varint(high)
    return _LOW2[z & 0x3FFF] + tail


def zz_int(n: int) -> bytes:
    """Avro int: a zig-zag varint that must fit 32 bits."""
    if not -(1 << 31) <= n < (1 << 31):
        raise OverflowError(f"{n} does not fit an Avro int")
    return zz(n)


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint that did not fit the inlined one-byte case.

    Only the canonical (shortest) encoding of a 64-bit value is accepted, as in
    _cavro.c: at most 10 bytes, no bits beyond 64, no redundant high zero group.
    """
    shift = 0
    n = 0
    while True:
        c = buf[pos]
        pos += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    if n >> 64:
        raise ValueError("varint exceeds 64 bits")
    if c == 0:  # a multi-byte varint whose last group adds nothing
        raise ValueError("non-canonical varint (overlong encoding)")
    return (n >> 1) ^ -(n & 1), pos


def read_int(buf: bytes, pos: int) -> tuple[int, int]:
    """An Avro int: a canonical varint that must fit 32 bits."""
    value, pos = read_long(buf, pos)
    if not -(1 << 31) <= value < (1 << 31):
        raise ValueError("int out of 32-bit range")
    return value, pos


_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


# -- code generation ---------------------------------------------------------------------
class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.counter = 0

    def var(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any, prefix: str = "_k") -> str:
        name = self.var(prefix)
        self.consts[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _branches(schema: Any) -> tuple[bool, Any]:
    """(nullable, the non-null branch) for a union of null and one type."""
    if isinstance(schema, list):
        others = [s for s in schema if s != "null"]
        if len(schema) == 2 and len(others) == 1:
            return True, others[0]
        raise Unsupported(f"union {schema}")
    return False, schema


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return str(schema["type"])
    raise Unsupported(str(schema))


def _named(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in named:
        return named[schema]
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        name = schema["name"]
        named[name] = schema
        namespace = schema.get("namespace")
        if namespace:
            named[f"{namespace}.{name}"] = schema
    return schema


# -- encoder -------------------------------------------------------------------------------
def _enc_value(
    g: _Gen, schema: Any, value: str, indent: int, named: dict[str, Any], cached: bool
) -> None:
    schema = _named(schema, named)
    nullable, inner = _branches(schema)
    if nullable:
        g.emit(indent, f"if {value} is None:")
        g.emit(indent + 1, "ap(b'\\x00')" if schema[0] == "null" else "ap(b'\\x02')")
        g.emit(indent, "else:")
        g.emit(indent + 1, "ap(b'\\x02')" if schema[0] == "null" else "ap(b'\\x00')")
        _enc_value(g, inner, value, indent + 1, named, cached)
        return
    kind = _type_name(_named(inner, named))
    inner = _named(inner, named)
    if kind == "null":
        g.emit(indent, f"if {value} is not None: raise TypeError('expected null')")
    elif kind == "boolean":
        g.emit(indent, f"ap(b'\\x01' if {value} else b'\\x00')")
    elif kind == "int":
        g.emit(indent, f"ap(zz_int({value}.__index__()))")
    elif kind == "long":
        g.emit(indent, f"ap(zz({value}.__index__()))")
    elif kind == "double":
        g.emit(indent, f"ap(_pack_d({value}))")
    elif kind == "float":
        g.emit(indent, f"ap(_pack_f({value}))")
    elif kind == "string":
        if cached:
            cache = g.const({}, "_cache")
            hit = g.var("h")
            g.emit(indent, f"{hit} = {cache}.get({value})")
            g.emit(indent, f"if {hit} is None:")
            raw = g.var("b")
            g.emit(indent + 1, f"{raw} = {value}.encode()")
            g.emit(indent + 1, f"{hit} = zz(len({raw})) + {raw}")
            g.emit(indent + 1, f"if len({cache}) >= {_CACHE_LIMIT}: {cache}.clear()")
            g.emit(indent + 1, f"{cache}[{value}] = {hit}")
            g.emit(indent, f"ap({hit})")
        else:
            raw = g.var("b")
            g.emit(indent, f"{raw} = {value}.encode()")
            g.emit(indent, f"ap(zz(len({raw})))")
            g.emit(indent, f"ap({raw})")
    elif kind == "bytes":
        g.emit(indent, f"if not isinstance({value}, (bytes, bytearray)): raise TypeError('bytes')")
        g.emit(indent, f"ap(zz(len({value})))")
        g.emit(indent, f"ap(bytes({value}))")
    elif kind == "fixed":
        size = int(inner["size"])
        g.emit(indent, f"if len({value}) != {size}: raise ValueError('fixed size')")
        g.emit(indent, f"ap(bytes({value}))")
    elif kind == "enum":
        index = g.const({s: zz(i) for i, s in enumerate(inner["symbols"])}, "_enum")
        g.emit(indent, f"ap({index}[{value}])")
    elif kind == "array":
        item = g.var("i")
        g.emit(indent, f"if {value}:")
        g.emit(indent + 1, f"ap(zz(len({value})))")
        g.emit(indent + 1, f"for {item} in {value}:")
        _enc_value(g, inner["items"], item, indent + 2, named, cached)
        g.emit(indent, "ap(b'\\x00')")
    elif kind == "map":
        key, item = g.var("k"), g.var("v")
        g.emit(indent, f"if {value}:")
        g.emit(indent + 1, f"ap(zz(len({value})))")
        g.emit(indent + 1, f"for {key}, {item} in {value}.items():")
        _enc_value(g, "string", key, indent + 2, named, True)
        _enc_value(g, inner["values"], item, indent + 2, named, True)
        g.emit(indent, "ap(b'\\x00')")
    elif kind == "record":
        rec = g.var("r")
        g.emit(indent, f"{rec} = {value}")
        _enc_fields(g, inner, rec, indent, named)
    else:
        raise Unsupported(kind)


def _enc_fields(
    g: _Gen, schema: dict[str, Any], rec: str, indent: int, named: dict[str, Any]
) -> None:
    for field in schema["fields"]:
        name = field["name"]
        value = g.var("f")
        if "default" in field:
            default = g.const(field["default"], "_d")
            g.emit(indent, f"{value} = {rec}.get({name!r}, {default})")
        else:
            g.emit(indent, f"{value} = {rec}[{name!r}]")
        _enc_value(g, field["type"], value, indent, named, name in LOW_CARDINALITY)


def compile_encoder(schema: dict[str, Any]) -> Encoder:
    """``encode(record) -> Avro binary body`` for a record schema."""
    if schema.get("type") != "record":
        raise Unsupported("top level must be a record")
    g = _Gen()
    g.emit(0, "def encode(rec):")
    g.emit(1, "parts = []")
    g.emit(1, "ap = parts.append")
    _enc_fields(g, schema, "rec", 1, {})
    g.emit(1, "return b''.join(parts)")
    namespace: dict[str, Any] = {
        "zz": zz,
        "zz_int": zz_int,
        "_pack_d": _DOUBLE.pack,
        "_pack_f": _FLOAT.pack,
        **g.consts,
    }
    exec("\n".join(g.lines), namespace)
    return namespace["encode"]  # type: ignore[no-any-return]


# -- decoder -------------------------------------------------------------------------------
def _dec_long(g: _Gen, target: str, indent: int, reader: str = "read_long") -> None:
    # a one-byte varint is always canonical and fits an int
    g.emit(indent, "c = b[pos]")
    g.emit(indent, "if c < 0x80:")
    g.emit(indent + 1, f"{target} = (c >> 1) ^ -(c & 1)")
    g.emit(indent + 1, "pos += 1")
    g.emit(indent, "else:")
    g.emit(indent + 1, f"{target}, pos = {reader}(b, pos)")


def min_size(schema: Any, named: dict[str, Any]) -> int:
    """Fewest bytes a value of ``schema`` takes: bounds a forged block count (as in _cavro.c)."""
    schema = _named(schema, named)
    nullable, inner = _branches(schema)
    if nullable:
        return 1
    inner = _named(inner, named)
    kind = _type_name(inner)
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


def _dec_block_count(g: _Gen, count: str, item: Any, indent: int, named: dict[str, Any]) -> str:
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


def _dec_value(g: _Gen, schema: Any, target: str, indent: int, named: dict[str, Any]) -> None:
    schema = _named(schema, named)
    nullable, inner = _branches(schema)
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
    inner = _named(inner, named)
    kind = _type_name(inner)
    if kind == "null":
        g.emit(indent, f"{target} = None")
    elif kind == "boolean":
        g.emit(indent, "c = b[pos]")
        g.emit(indent, "pos += 1")
        g.emit(indent, "if c > 1: raise ValueError('bad boolean')")
        g.emit(indent, f"{target} = c == 1")
    elif kind == "int":
        _dec_long(g, target, indent, "read_int")
    elif kind == "long":
        _dec_long(g, target, indent)
    elif kind == "double":
        g.emit(indent, f"{target} = _unpack_d(b, pos)[0]")
        g.emit(indent, "pos += 8")
    elif kind == "float":
        g.emit(indent, f"{target} = _unpack_f(b, pos)[0]")
        g.emit(indent, "pos += 4")
    elif kind in ("string", "bytes"):
        n = g.var("n")
        _dec_long(g, n, indent)
        g.emit(indent, f"if {n} < 0: raise ValueError('negative length')")
        g.emit(indent, f"end = pos + {n}")
        g.emit(indent, "if end > blen: raise EOFError")
        if kind == "string":
            g.emit(indent, f"{target} = b[pos:end].decode()")
        else:
            g.emit(indent, f"{target} = bytes(b[pos:end])")
        g.emit(indent, "pos = end")
    elif kind == "fixed":
        size = int(inner["size"])
        g.emit(indent, f"end = pos + {size}")
        g.emit(indent, "if end > blen: raise EOFError")
        g.emit(indent, f"{target} = bytes(b[pos:end])")
        g.emit(indent, "pos = end")
    elif kind == "enum":
        symbols = g.const(tuple(inner["symbols"]), "_sym")
        index = g.var("e")
        _dec_long(g, index, indent)
        g.emit(
            indent,
            f"if not 0 <= {index} < {len(inner['symbols'])}: "
            "raise ValueError('enum index out of range')",
        )
        g.emit(indent, f"{target} = {symbols}[{index}]")
    elif kind in ("array", "map"):
        count, item = g.var("cnt"), g.var("it")
        items = inner["values"] if kind == "map" else inner["items"]
        g.emit(indent, f"{target} = {{}}" if kind == "map" else f"{target} = []")
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
        if kind == "map":
            key = g.var("k")
            _dec_value(g, "string", key, indent + 2, named)
            _dec_value(g, items, item, indent + 2, named)
            g.emit(indent + 2, f"{target}[{key}] = {item}")
        else:
            _dec_value(g, items, item, indent + 2, named)
            g.emit(indent + 2, f"{target}.append({item})")
        g.emit(indent + 1, f"if {end} >= 0 and pos != {end}:")
        g.emit(indent + 2, "raise ValueError('block size does not match its items')")
    elif kind == "record":
        names = []
        for field in inner["fields"]:
            var = g.var("x")
            _dec_value(g, field["type"], var, indent, named)
            names.append((field["name"], var))
        items = ", ".join(f"{name!r}: {var}" for name, var in names)
        g.emit(indent, f"{target} = {{{items}}}")
    else:
        raise Unsupported(kind)


def compile_decoder(schema: dict[str, Any]) -> Decoder:
    """``decode(buf, pos) -> (record, end)`` for a record schema.

    Raises IndexError/EOFError/struct.error on truncated input, ValueError or
    UnicodeDecodeError on invalid input (including values outside their type's
    range and non-canonical varints), exactly where _cavro.c does.
    """
    if schema.get("type") != "record":
        raise Unsupported("top level must be a record")
    g = _Gen()
    g.emit(0, "def decode(b, pos):")
    g.emit(1, "blen = len(b)")
    _dec_value(g, schema, "rec", 1, {})
    g.emit(1, "return rec, pos")
    namespace: dict[str, Any] = {
        "read_long": read_long,
        "read_int": read_int,
        "_unpack_d": _DOUBLE.unpack_from,
        "_unpack_f": _FLOAT.unpack_from,
        **g.consts,
    }
    exec("\n".join(g.lines), namespace)
    return namespace["decode"]  # type: ignore[no-any-return]


# -- native (C) codec ----------------------------------------------------------------------
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
    schema = _named(schema, named)
    nullable, inner = _branches(schema)
    null_code = 0
    if nullable:
        null_code = 1 if schema[0] == "null" else 2
    inner = _named(inner, named)
    kind = _type_name(inner)
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
    if schema.get("type") != "record":
        raise Unsupported("top level must be a record")
    try:
        from shadowstream.schemas import _cavro  # type: ignore[attr-defined]
    except ImportError as exc:
        raise Unsupported(f"the C extension is not built ({exc})") from None
    codec = _cavro.compile(native_spec(schema))
    return codec.encode, codec.decode


def compile_native_check(schema: dict[str, Any]) -> Callable[[bytes, int], int]:
    """``check(buf, pos) -> end`` in C: what the decoder accepts or refuses, with the
    same errors, without building the value (a few times cheaper than decoding)."""
    if schema.get("type") != "record":
        raise Unsupported("top level must be a record")
    try:
        from shadowstream.schemas import _cavro  # type: ignore[attr-defined]
    except ImportError as exc:
        raise Unsupported(f"the C extension is not built ({exc})") from None
    check: Callable[[bytes, int], int] = _cavro.compile(native_spec(schema)).check
    return check


def native_available() -> bool:
    try:
        from shadowstream.schemas import _cavro  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True
