"""A malformed event body is reported the same way whichever decoder read it: truncated,
undecodable (with the decoder's error), or followed by trailing bytes."""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro

from shadowstream.core.errors import MalformedEventError

# what the strict decoders (C and generated Python) raise on a body cut short, on an invalid one
TRUNCATED = (IndexError, EOFError, struct.error)
INVALID = (ValueError, UnicodeDecodeError, KeyError, OverflowError)


def truncated(name: str) -> MalformedEventError:
    return MalformedEventError(f"truncated {name} body", "truncated")


def undecodable(name: str, exc: BaseException) -> MalformedEventError:
    return MalformedEventError(f"undecodable {name} body: {type(exc).__name__}: {exc}", "invalid")


def trailing(name: str, extra: int) -> MalformedEventError:
    return MalformedEventError(f"{extra} trailing bytes after the {name} body", "invalid")


def read_with_fastavro(
    data: bytes, offset: int, writer_parsed: Any, reader_parsed: Any, name: str
) -> dict[str, Any]:
    """The body at ``offset`` read by fastavro (resolved to ``reader_parsed`` unless None),
    which must fill the rest of ``data`` and be a record."""
    buf = io.BytesIO(data)
    buf.seek(offset)
    try:
        decoded = fastavro.schemaless_reader(buf, writer_parsed, reader_parsed)
    except EOFError:
        raise truncated(name) from None
    except Exception as exc:  # fastavro raises many types on garbage bodies
        raise undecodable(name, exc) from None
    if buf.tell() != len(data):
        raise trailing(name, len(data) - buf.tell())
    if not isinstance(decoded, dict):
        raise MalformedEventError(f"{name} body is not a record", "invalid")
    return decoded
