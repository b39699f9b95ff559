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
)
from tests.support.avro_mutations import (
    mutate_bytes,
    mutate_tree,
    random_value,
    serialize,
    tokens,
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
