"""Random valid Avro values and their mutations, for fuzzing the decoders.

``random_value`` makes a valid value of a schema (edge values included);
``tokens`` turns it into a tree of the encoding's pieces (varints by role,
string bytes, array/map blocks) that ``mutate_tree`` forges in place (overlong
or out-of-range varints, lying lengths, counts and block sizes, edge UTF-8);
``mutate_bytes`` damages the serialized bytes.
"""

from __future__ import annotations

import math
import random
import struct
from typing import Any

from shadowstream.schemas.fastcodec import zz

INT_EDGES = [0, 1, -1, 63, 64, -64, -65, 2**31 - 1, -(2**31)]
LONG_EDGES = [*INT_EDGES, 2**31, -(2**31) - 1, 2**53, 2**63 - 1, -(2**63)]
FORGED = [2**31, -(2**31) - 1, 2**31 - 1, 2**63 - 1, -(2**63), 2**24, 2**40, -1, 0, 1, 1 << 62]
FLOATS = [0.0, -0.0, 1.5, math.nan, math.inf, -math.inf, 1e308, 5e-324, 3.4e38]
# well- and ill-formed UTF-8 at the edges of Unicode table 3-7
UTF8_EDGES = [
    b"\x00", b"\x7f", b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf",
    b"\xee\x80\x80", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",  # all fine
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xc2", b"\xe1\x80",
    b"\xf1\x80\x80", b"\xe1\x80\x41", b"\xc2\xc2\x80",
]  # fmt: skip


# -- random valid values ------------------------------------------------------------------
def _resolve(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in named:
        return named[schema]
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
    return schema


def random_value(schema: Any, rng: random.Random, named: dict[str, Any], depth: int = 0) -> Any:
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        inner = next(s for s in schema if s != "null")
        return None if rng.random() < 0.3 else random_value(inner, rng, named, depth)
    kind = schema if isinstance(schema, str) else schema["type"]
    small = depth > 2
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([*INT_EDGES, rng.randint(-(2**31), 2**31 - 1)])
    if kind == "long":
        return rng.choice([*LONG_EDGES, rng.randint(-(2**63), 2**63 - 1)])
    if kind in ("float", "double"):
        value = rng.choice([*FLOATS, rng.uniform(-1e6, 1e6)])
        if kind == "float":  # a value a 4-byte float holds (1e308 does not)
            return struct.unpack("<f", struct.pack("<f", min(max(value, -3e38), 3e38)))[0]
        return value
    if kind == "string":
        alphabet = 'ab{}":, \\\n\x00äß€😀中'
        return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 3, 17, 130])))
    if kind == "bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 9, 130])))
    if kind == "fixed":
        return bytes(rng.getrandbits(8) for _ in range(int(schema["size"])))
    if kind == "enum":
        return rng.choice(schema["symbols"])
    if kind == "array":
        n = rng.choice([0, 1, 2, 5] if small else [0, 1, 2, 5, 40])
        return [random_value(schema["items"], rng, named, depth + 1) for _ in range(n)]
    if kind == "map":
        n = rng.choice([0, 1, 3] if small else [0, 1, 3, 20])
        return {
            f"k{i}{rng.choice('xyz')}": random_value(schema["values"], rng, named, depth + 1)
            for i in range(n)
        }
    if kind == "record":
        return {f["name"]: random_value(f["type"], rng, named, depth + 1) for f in schema["fields"]}
    raise AssertionError(kind)


# -- a token tree of an encoding, to forge its varints, lengths and blocks ---------------------
# ["v", role, value]  one varint (role: long | int | length | count | branch | enum)
# ["b", bytes]        raw bytes (fixed, float, double, boolean, bytes data)
# ["s", bytes]        the UTF-8 of a string (its length is the "v" node before it)
# ["x", bytes]        a forged encoding that replaced a node
# ["blk", [[nodes of one item], ...], form]  one array/map block and its end;
#                     form: "plain" | "sized" (negative count + byte size) | "split"
Node = list[Any]


def tokens(schema: Any, value: Any, named: dict[str, Any]) -> list[Node]:
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        null_first = schema[0] == "null"
        inner = schema[1] if null_first else schema[0]
        if value is None:
            return [["v", "branch", 0 if null_first else 1]]
        return [["v", "branch", 1 if null_first else 0], *tokens(inner, value, named)]
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "null":
        return []
    if kind == "boolean":
        return [["b", b"\x01" if value else b"\x00"]]
    if kind in ("int", "long"):
        return [["v", kind, value]]
    if kind == "float":
        return [["b", struct.pack("<f", value)]]
    if kind == "double":
        return [["b", struct.pack("<d", value)]]
    if kind in ("string", "bytes"):
        data = value.encode() if kind == "string" else value
        return [["v", "length", len(data)], ["s" if kind == "string" else "b", data]]
    if kind == "fixed":
        return [["b", value]]
    if kind == "enum":
        return [["v", "enum", schema["symbols"].index(value)]]
    if kind == "array":
        items = [tokens(schema["items"], v, named) for v in value]
        return [["blk", items, "plain"]]
    if kind == "map":
        pairs = [
            [*tokens("string", k, named), *tokens(schema["values"], v, named)]
            for k, v in value.items()
        ]
        return [["blk", pairs, "plain"]]
    if kind == "record":
        out: list[Node] = []
        for f in schema["fields"]:
            out.extend(tokens(f["type"], value[f["name"]], named))
        return out
    raise AssertionError(kind)


def serialize(nodes: list[Node]) -> bytes:
    out = bytearray()
    for node in nodes:
        tag = node[0]
        if tag == "v":
            out += zz(node[2])
        elif tag in ("b", "s", "x"):
            out += node[1]
        else:
            out += _serialize_block(node)
    return bytes(out)


def _serialize_block(node: Node) -> bytes:
    items: list[list[Node]] = node[1]
    form = node[2]
    if not items:
        return b"\x00"
    body = b"".join(serialize(item) for item in items)
    if form == "sized":
        return zz(-len(items)) + zz(len(body)) + body + b"\x00"
    if form == "split" and len(items) > 1:
        half = len(items) // 2
        first = b"".join(serialize(item) for item in items[:half])
        rest = b"".join(serialize(item) for item in items[half:])
        return zz(half) + first + zz(len(items) - half) + rest + b"\x00"
    return zz(len(items)) + body + b"\x00"


def _walk(nodes: list[Node], out: list[Node]) -> None:
    for node in nodes:
        out.append(node)
        if node[0] == "blk":
            for item in node[1]:
                _walk(item, out)


def wide_zz(n: int) -> bytes:
    """The zig-zag varint of any integer, 64-bit or not (past 64 bits: 10+ bytes)."""
    z = 2 * n if n >= 0 else -2 * n - 1
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def forge_varint(value: int, rng: random.Random) -> bytes:
    """A varint that is not the canonical encoding of a 64-bit value, or is of ``value``."""
    choice = rng.randrange(5)
    if choice == 0:  # overlong: redundant high zero groups
        body = bytearray(wide_zz(value))
        extra = rng.randint(1, 3)
        body[-1] |= 0x80
        body += b"\x80" * (extra - 1) + b"\x00"
        return bytes(body)
    if choice == 1:  # 10 bytes with bits beyond 64
        return b"\xff" * 9 + bytes([rng.choice([0x02, 0x03, 0x7F])])
    if choice == 2:  # 11 bytes or more
        return b"\x81" * rng.randint(10, 12) + b"\x01"
    if choice == 3:  # a canonical varint of a value just past a range edge
        return zz(rng.choice(FORGED))
    return wide_zz(value + rng.choice([-1, 1]))


def mutate_tree(nodes: list[Node], rng: random.Random) -> None:
    flat: list[Node] = []
    _walk(nodes, flat)
    candidates = [n for n in flat if n[0] in ("v", "blk", "s")]
    if not candidates:
        return
    node = rng.choice(candidates)
    if node[0] == "s":  # edge UTF-8 inside a string, its length kept right
        data = bytearray(node[1])
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice(UTF8_EDGES)
        node[1] = bytes(data)
        # the length node precedes it in its parent: fix it up through the tree walk
        _fix_lengths(nodes)
        return
    if node[0] == "blk":
        items = node[1]
        action = rng.randrange(4)
        if action == 0:
            node[2] = "sized"
        elif action == 1:
            node[2] = "split"
        elif action == 2 and items:  # a negative count whose byte size lies
            body = b"".join(serialize(item) for item in items)
            size = len(body) + rng.choice([-1, 1, -len(body) - 1, 1 << 40])
            node[:] = ["x", zz(-len(items)) + zz(size) + body + b"\x00"]
        else:  # a forged count for the items that follow
            body = b"".join(serialize(item) for item in items)
            count = rng.choice([len(items) + 1, len(items) - 1, *FORGED])
            node[:] = ["x", zz(count) + body + b"\x00"]
        return
    role, value = node[1], node[2]
    if role in ("int", "long") and rng.random() < 0.5:
        node[:] = ["x", zz(rng.choice(FORGED))]
    else:
        node[:] = ["x", forge_varint(value, rng)]


def _fix_lengths(nodes: list[Node]) -> None:
    for i, node in enumerate(nodes):
        if node[0] == "s" and i > 0 and nodes[i - 1][0] == "v" and nodes[i - 1][1] == "length":
            nodes[i - 1][2] = len(node[1])
        elif node[0] == "blk":
            for item in node[1]:
                _fix_lengths(item)


def mutate_bytes(data: bytes, rng: random.Random, donor: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        action = rng.randrange(6)
        at = rng.randrange(len(buf) + 1)
        if action == 0 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif action == 1 and buf:
            buf[min(at, len(buf) - 1)] = rng.choice([0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFF])
        elif action == 2:
            del buf[at:]
        elif action == 3:
            buf[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4)))
        elif action == 4:
            del buf[at : at + rng.randint(1, 4)]
        elif donor:
            start = rng.randrange(len(donor))
            buf[at:at] = donor[start : start + rng.randint(1, 16)]
    return bytes(buf)
