"""Seeded fuzzing of the C Avro decoder, checked against the generated Python one.

Inputs are Avro bodies of the project's event schemas (and one schema that
uses every construct the codecs support), built from random valid records and
then mutated: forged varints (overlong, past the type's range, more than 64
bits), forged string lengths, array/map counts and block byte sizes, and plain
byte damage (flips, truncation, insertion, deletion, splices).

Every input goes through both decoders, which must agree: both refuse it the
same way (truncated vs invalid), or both accept it with the same value and end
position, and then the value must encode again and decode to itself (a decoded
event can always be re-encoded, which is what the router relies on). fastavro
must accept every input the strict decoders accept, with the same value.

Run as a module (what tests/unit/test_codec_fuzz.py does), so that a crash or
a hang of the C decoder cannot take the test process down with it: before
each C call the input is written to a shared file, which the parent reads if
the child dies or stops answering::

    python -m tests.support.codec_fuzz --seed 1 --seconds 20 --crash-file /tmp/x
"""

from __future__ import annotations

import argparse
import io
import json
import math
import mmap
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from shadowstream.schemas import COMPARISON, DEAD_LETTER, REQUEST, RESPONSE, STATS
from shadowstream.schemas.fastcodec import (
    compile_decoder,
    compile_encoder,
    compile_native,
    compile_native_check,
    zz,
)

CORPUS = Path(__file__).resolve().parent.parent / "unit" / "codec_corpus"
CRASH_SLOT = 1 << 20  # bytes of the shared file: 4-byte length, 32-byte schema name, input

EVERYTHING: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "fields": [
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "b", "type": "boolean"},
        {"name": "s", "type": "string"},
        {"name": "raw", "type": "bytes"},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
        {"name": "ni", "type": ["null", "int"]},
        {"name": "ln", "type": ["long", "null"]},
        {"name": "nulls", "type": {"type": "array", "items": "null"}},
        {"name": "ints", "type": {"type": "array", "items": "int"}},
        {"name": "m", "type": {"type": "map", "values": ["null", "double"]}},
        {
            "name": "nested",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Inner",
                    "fields": [
                        {"name": "tags", "type": {"type": "map", "values": "string"}},
                        {"name": "n", "type": ["null", "Four"]},
                        {"name": "empty", "type": {"type": "record", "name": "Z", "fields": []}},
                    ],
                },
            },
        },
    ],
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "request": REQUEST.schema,
    "response": RESPONSE.schema,
    "comparison": COMPARISON.schema,
    "deadletter": DEAD_LETTER.schema,
    "stats": STATS.schema,
    "everything": EVERYTHING,
}

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


# -- the differential check -------------------------------------------------------------------
Decoder = Callable[[bytes, int], tuple[Any, int]]


class Codecs:
    """The C and Python decoders and the Python encoder of one schema, plus fastavro."""

    def __init__(self, schema: dict[str, Any]) -> None:
        encode, self.c_decode = compile_native(schema)
        self.c_encode: Callable[[Any], bytes] = encode
        self.c_check = compile_native_check(schema)
        self.py_decode: Decoder = compile_decoder(schema)
        self.py_encode = compile_encoder(schema)
        self.parsed = fastavro.parse_schema(schema)


def outcome(decode: Decoder, data: bytes) -> tuple[str, Any]:
    try:
        value, end = decode(data, 0)
    except (IndexError, EOFError, struct.error):
        return "truncated", None
    except (ValueError, UnicodeDecodeError, KeyError, OverflowError) as exc:
        return "invalid", f"{type(exc).__name__}"
    return "ok", (value, end)


def same(a: Any, b: Any) -> bool:
    """Equal values, NaN included (bit for bit for floats)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def check(codecs: Codecs, data: bytes, fastavro_too: bool = True) -> str | None:
    """None if the decoders agree on ``data`` (and what they accept re-encodes), else why."""
    c = outcome(codecs.c_decode, data)
    py = outcome(codecs.py_decode, data)
    checked = outcome(lambda b, pos: (None, codecs.c_check(b, pos)), data)
    if c[0] != py[0]:
        return f"C says {c[0]}, Python says {py[0]}"
    if checked[0] != c[0]:
        return f"C check says {checked[0]}, C decode says {c[0]}"
    if c[0] != "ok":
        return None
    (c_value, c_end), (py_value, py_end) = c[1], py[1]
    if checked[1][1] != c_end:
        return f"C check ends at {checked[1][1]}, C decode at {c_end}"
    if c_end != py_end or not same(c_value, py_value):
        return f"decoded differently (end {c_end} vs {py_end})"
    if c_end == len(data):
        try:
            again = codecs.py_encode(c_value)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            return f"accepted but cannot be encoded again: {type(exc).__name__}: {exc}"
        if codecs.c_encode(c_value) != again:
            return "the C and Python encoders disagree on the decoded value"
        if not same(codecs.c_decode(again, 0)[0], c_value):
            return "encode(decode(x)) decodes to another value"
        if fastavro_too:
            try:
                reference = fastavro.schemaless_reader(io.BytesIO(data), codecs.parsed, None)
            except Exception as exc:
                return f"accepted here, refused by fastavro: {type(exc).__name__}"
            if not same(reference, c_value):
                return "fastavro decodes it to another value"
    return None


# -- the run ----------------------------------------------------------------------------------
class CrashSlot:
    """The input being decoded, in a file the parent can read if this process dies."""

    def __init__(self, path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(CRASH_SLOT)
        self._file = open(path, "r+b")  # noqa: SIM115
        self._map = mmap.mmap(self._file.fileno(), CRASH_SLOT)

    def hold(self, schema: str, data: bytes) -> None:
        data = data[: CRASH_SLOT - 36]
        self._map[0:36] = struct.pack("<I", len(data)) + schema.encode().ljust(32, b" ")
        self._map[36 : 36 + len(data)] = data


def read_crash_slot(path: Path) -> tuple[str, bytes] | None:
    raw = path.read_bytes()
    if len(raw) < 36:
        return None
    size = struct.unpack("<I", raw[:4])[0]
    return raw[4:36].decode().strip(), raw[36 : 36 + size]


def fuzz(
    seed: int, seconds: float, max_cases: int, slot: CrashSlot | None, min_cases: int = 0
) -> dict[str, Any]:
    """At least ``min_cases`` inputs (the same ones for a seed, however loaded the
    machine), then more until ``seconds`` have passed or ``max_cases`` are done."""
    rng = random.Random(seed)
    codecs = {name: Codecs(schema) for name, schema in SCHEMAS.items()}
    names = sorted(SCHEMAS)
    found: list[dict[str, str]] = []
    counts = {"cases": 0, "accepted": 0, "truncated": 0, "invalid": 0}
    deadline = time.monotonic() + seconds
    donor = b""
    while counts["cases"] < max_cases and (
        counts["cases"] < min_cases or time.monotonic() < deadline
    ):
        name = rng.choice(names)
        tree = tokens(SCHEMAS[name], random_value(SCHEMAS[name], rng, {}), {})
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            mutate_tree(tree, rng)
        data = serialize(tree)
        if rng.random() < 0.4:
            data = mutate_bytes(data, rng, donor)
        donor = data
        if slot is not None:
            slot.hold(name, data)
        why = check(codecs[name], data)
        counts["cases"] += 1
        counts[outcome(codecs[name].c_decode, data)[0].replace("ok", "accepted")] += 1
        if why is not None:
            found.append({"schema": name, "hex": data.hex(), "why": why})
            if len(found) >= 20:
                break
    return {"seed": seed, **counts, "found": found}


def corpus_cases() -> list[tuple[str, str, bytes]]:
    """(file name, schema, body) of every kept regression input."""
    out = []
    for path in sorted(CORPUS.glob("*.bin")):
        out.append((path.name, path.name.split("-", 1)[0], path.read_bytes()))
    return out


def keep(schema: str, data: bytes) -> Path:
    """Add an input to the regression corpus (named by its content)."""
    import hashlib

    CORPUS.mkdir(parents=True, exist_ok=True)
    path = CORPUS / f"{schema}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-cases", type=int, default=10_000_000)
    parser.add_argument("--min-cases", type=int, default=0)
    parser.add_argument("--crash-file", type=Path)
    args = parser.parse_args(argv)
    slot = CrashSlot(args.crash_file) if args.crash_file else None
    result = fuzz(args.seed, args.seconds, args.max_cases, slot, args.min_cases)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
