"""Avro's zig-zag varints: table-driven encoding, canonical-only decoding (as in _cavro.c).

Shared by the generated codecs (:mod:`shadowstream.schemas.fastcodec`), the Avro
container writer and the timestamp peek.
"""

from __future__ import annotations


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
