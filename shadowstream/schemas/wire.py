"""Wire contracts that are not Avro events: Kafka headers, the router's changelog
markers, and the control topic's commands.

They are shared by the agents that write them (the router) and the code that
reads them from outside (batch experiments follow the changelog and publish
commands), so they live here, below both, rather than in either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

# the challengers a batch request goes to, comma-separated (set by experiments)
TARGETS_HEADER = "shadow.challengers"
# challengers whose answers come along with a batch request (provider batch APIs): the
# router records them as asked and never forwards the request to their workers
ANSWERED_HEADER = "shadow.answered"
# the champion's tool calls and results (JSON) with a record-replay challenger's request
TOOL_TRACE_HEADER = "shadow.tool_trace"

MARKERS_KEY = b"@markers"  # a changelog record holding many markers
MARKERS_PER_RECORD = 2_000


@dataclass(frozen=True, slots=True)
class Marker:
    """What is left of a closed request: enough to tell duplicate from late."""

    closed_at: float  # wall clock (epoch seconds); survives a restart via the changelog
    asked: frozenset[str]
    received: frozenset[str]


def encode_marker(marker: Marker) -> bytes:
    """One marker as its own changelog record (key = request id)."""
    return orjson.dumps(
        {"t": marker.closed_at, "a": sorted(marker.asked), "r": sorted(marker.received)}
    )


def encode_markers(markers: Sequence[tuple[str, Marker]]) -> bytes:
    """Many markers in one changelog record (key = MARKERS_KEY): one produce per commit
    and partition instead of one per request."""
    return orjson.dumps(
        [[rid, m.closed_at, sorted(m.asked), sorted(m.received)] for rid, m in markers]
    )


def decode_marker(data: bytes) -> Marker:
    raw = orjson.loads(data)
    return Marker(float(raw["t"]), frozenset(raw["a"]), frozenset(raw["r"]))


def iter_markers(key: bytes | None, value: bytes | None) -> Iterator[tuple[str, Marker]]:
    """The markers in one changelog record, whichever of the two formats it uses."""
    if key is None or not value:
        return
    try:
        if key == MARKERS_KEY:
            for rid, closed_at, asked, received in orjson.loads(value):
                yield str(rid), Marker(float(closed_at), frozenset(asked), frozenset(received))
        else:
            yield key.decode(), decode_marker(value)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return


def encode_command(command: dict[str, Any]) -> bytes:
    """A control command, e.g. ``{"type": "cancel", "experiment_id": "b-42"}``; the
    record's key is the experiment id (the topic is compacted)."""
    return orjson.dumps(command)


def decode_command(data: bytes) -> dict[str, Any] | None:
    """The command in a control record, or None if it is not a JSON object."""
    try:
        command = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return command if isinstance(command, dict) else None
