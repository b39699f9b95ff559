"""The strict decoders: range and canonical-varint checks, fuzzed C against Python.

The fuzz run is bounded (SHADOW_FUZZ_SECONDS, default 20) and seeded
(SHADOW_FUZZ_SEED, default below); it runs in a child process so that a crash
or a hang of the C decoder is caught, and the input that caused it is kept in
tests/unit/codec_corpus/ (as is any input the two decoders disagree on), where
every later run replays it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shadowstream.core.errors import MalformedEventError
from shadowstream.schemas import RESPONSE, EventCodec
from shadowstream.schemas.codec import SchemaRegistry
from shadowstream.schemas.fastcodec import native_available, zz
from tests.support.codec_fuzz import (
    SCHEMAS,
    Codecs,
    check,
    corpus_cases,
    keep,
    read_crash_slot,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("SHADOW_FUZZ_SEED", "20131"))
SECONDS = float(os.environ.get("SHADOW_FUZZ_SECONDS", "20"))
MIN_CASES = 1_000  # done whatever the machine's load, then more until SECONDS pass
BACKENDS = ["python", "c"]

needs_c = pytest.mark.skipif(not native_available(), reason="the C codec is not built")


def response(**usage: Any) -> dict[str, Any]:
    return {
        "request_id": "r-1",
        "timestamp_us": 1_700_000_000_000_000,
        "role": "champion",
        "challenger": "",
        "model": "m",
        "output": "{}",
        "latency_ms": 1.0,
        "status": "ok",
        "error": None,
        "usage": {"tokens_in": None, "tokens_out": None, "tool_calls": None, "cost": None, **usage},
        "tool_trace": None,
        "experiment_id": "live",
    }


def with_tool_calls_varint(varint: bytes) -> bytes:
    """A ResponseEvent whose usage.tool_calls is written as the given raw varint."""
    data = RESPONSE.encode(response(tool_calls=1, cost=None))
    # usage = tokens_in null, tokens_out null, tool_calls [branch 2, zz(1) = 0x02], cost null
    at = data.index(b"\x00\x00\x02\x02\x00") + 3
    return data[:at] + varint + data[at + 1 :]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("varint", "why"),
    [
        (zz(2**31), "int out of 32-bit range"),  # the poison pill
        (zz(-(2**31) - 1), "int out of 32-bit range"),
        (b"\x82\x00", "non-canonical"),  # 1 written in two bytes
        (b"\x80\x80\x80\x80\x00", "non-canonical"),
        (b"\xff" * 9 + b"\x03", "exceeds 64 bits"),  # silently truncated by the C decoder
        (b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    ],
)
def test_out_of_range_and_non_canonical_varints_are_malformed(
    backend: str, varint: bytes, why: str
) -> None:
    codec = EventCodec(RESPONSE.schema, SchemaRegistry(), backend=backend)
    with pytest.raises(MalformedEventError) as caught:
        codec.decode(with_tool_calls_varint(varint))
    assert caught.value.reason == "invalid"
    assert why in str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_at_the_edges_of_their_type_are_accepted(backend: str) -> None:
    codec = EventCodec(RESPONSE.schema, SchemaRegistry(), backend=backend)
    for tool_calls in (2**31 - 1, -(2**31)):
        for tokens in (2**63 - 1, -(2**63)):
            event = response(tool_calls=tool_calls, tokens_in=tokens, tokens_out=0)
            event["timestamp_us"] = tokens
            assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_block_whose_byte_size_lies_is_malformed(backend: str) -> None:
    schema = SCHEMAS["everything"]
    codecs = EventCodec(schema, SchemaRegistry(), backend=backend)
    record = {
        "i": 1, "l": 2, "f": 0.5, "d": 0.25, "b": True, "s": "s", "raw": b"", "fx": b"abcd",
        "e": "A", "ni": None, "ln": None, "nulls": [], "ints": [], "m": {}, "nested": [],
    }  # fmt: skip
    data = codecs.encode(record)
    ints_at = len(data) - 3  # the body ends with the empty ints, m and nested: 00 00 00
    good = data[:ints_at] + zz(-2) + zz(2) + zz(5) + zz(6) + b"\x00" + data[ints_at + 1 :]
    assert codecs.decode(good)["ints"] == [5, 6]
    for size in (1, 3, -1):
        bad = data[:ints_at] + zz(-2) + zz(size) + zz(5) + zz(6) + b"\x00" + data[ints_at + 1 :]
        with pytest.raises(MalformedEventError):
            codecs.decode(bad)


def test_an_older_writer_version_gets_the_same_checks() -> None:
    """Bodies of an older schema version go through fastavro's schema resolution,
    which accepts out-of-range ints: they are checked by the strict decoder first."""
    old = RESPONSE.schema
    new = {**old, "fields": [*old["fields"], {"name": "extra", "type": "string", "default": ""}]}
    registry = SchemaRegistry()
    writer = EventCodec(old, registry)
    reader = EventCodec(new, registry, older_versions=[old])
    assert reader.decode(writer.encode(response(tool_calls=3)))["usage"]["tool_calls"] == 3
    poisoned = writer.encode(response(tool_calls=1))
    at = poisoned.index(b"\x00\x00\x02\x02\x00") + 3
    with pytest.raises(MalformedEventError) as caught:
        reader.decode(poisoned[:at] + zz(2**31) + poisoned[at + 1 :])
    assert "int out of 32-bit range" in str(caught.value)


@needs_c
@pytest.mark.parametrize(("name", "schema", "body"), corpus_cases(), ids=lambda v: str(v)[:30])
def test_regression_corpus(name: str, schema: str, body: bytes) -> None:
    """Inputs that once crashed the C decoder or made the two decoders disagree."""
    assert check(Codecs(SCHEMAS[schema]), body) is None, name


@needs_c
@pytest.mark.timeout(SECONDS + 660, method="thread")
def test_fuzz_the_c_decoder_against_the_python_one(tmp_path: Path) -> None:
    crash_file = tmp_path / "current-input"
    cmd = [
        sys.executable,
        "-m",
        "tests.support.codec_fuzz",
        "--seed",
        str(SEED),
        "--seconds",
        str(SECONDS),
        "--crash-file",
        str(crash_file),
        "--min-cases",
        str(MIN_CASES),
    ]
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 600, check=False
        )
    except subprocess.TimeoutExpired:
        held = read_crash_slot(crash_file)
        kept = keep(*held) if held else None
        pytest.fail(f"the fuzz run hung (seed {SEED}); the input it was on is kept as {kept}")
    if done.returncode != 0:
        held = read_crash_slot(crash_file)
        kept = keep(*held) if held else None
        pytest.fail(
            f"the fuzz run died with {done.returncode} (seed {SEED}); the input it was on is "
            f"kept as {kept}\n{done.stderr[-2000:]}"
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    kept_files = [keep(f["schema"], bytes.fromhex(f["hex"])).name for f in result["found"]]
    print(
        f"\nfuzz seed {SEED}: {result['cases']:,} inputs in {SECONDS:.0f} s, "
        f"{result['accepted']:,} accepted, {result['truncated']:,} truncated, "
        f"{result['invalid']:,} invalid"
    )
    assert not result["found"], (
        f"the decoders disagree (seed {SEED}); kept as regression cases: {kept_files}: "
        + "; ".join(f["why"] for f in result["found"])
    )
    assert result["cases"] >= MIN_CASES
    assert result["accepted"] > 0 and result["invalid"] > 0 and result["truncated"] > 0


@needs_c
def test_the_c_check_refuses_exactly_the_utf8_python_refuses() -> None:
    """check() validates strings itself (decode() lets Python do it): every 1- and 2-byte
    string, every 3-byte one that starts a multi-byte sequence, and 4-byte samples."""
    from shadowstream.schemas.fastcodec import compile_native_check

    check = compile_native_check(
        {"type": "record", "name": "S", "fields": [{"name": "s", "type": "string"}]}
    )

    def agree(raw: bytes) -> None:
        try:
            raw.decode()
            python_ok = True
        except UnicodeDecodeError:
            python_ok = False
        try:
            check(zz(len(raw)) + raw, 0)
            c_ok = True
        except ValueError:
            c_ok = False
        assert c_ok == python_ok, raw.hex()

    for a in range(256):
        agree(bytes([a]))
        for b in range(256):
            agree(bytes([a, b]))
    for a in range(0xC0, 0x100):
        for b in range(0x70, 0xD0):
            for c in range(0x70, 0xD0, 3):
                agree(bytes([a, b, c]))
    rng = __import__("random").Random(4)
    for _ in range(50_000):
        agree(bytes([rng.randrange(0xE0, 0x100), *(rng.randrange(0x70, 0xD0) for _ in range(3))]))
    agree(("ascii " * 50 + "é" + "x" * 13).encode())  # the eight-bytes-at-a-time path


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("backend", BACKENDS)
def test_items_of_no_bytes_are_bounded_over_the_whole_array(backend: str) -> None:
    """Blocks of nulls each under the limit must not add up past it: the fuzzer found a
    701-byte input whose blocks claimed tens of millions of them (37 s to read)."""
    from shadowstream.schemas.fastcodec import ZERO_SIZE_ITEMS_LIMIT

    schema = {
        "type": "record",
        "name": "Nulls",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "null"}}],
    }
    codec = EventCodec(schema, SchemaRegistry(), backend=backend)
    empty = codec.encode({"xs": []})
    half = ZERO_SIZE_ITEMS_LIMIT // 2
    fits = empty[:-1] + zz(half) + zz(half) + b"\x00"
    assert len(codec.decode(fits)["xs"]) == ZERO_SIZE_ITEMS_LIMIT
    over = empty[:-1] + zz(half) * 3 + b"\x00"
    with pytest.raises(MalformedEventError) as caught:
        codec.decode(over)
    assert caught.value.reason == "invalid"
