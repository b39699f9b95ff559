"""Reading events written with another schema version: per-event decode cost, side by side.

During a rolling upgrade readers see two versions of each event. Rows: the
reader's own version (the hot path), another version through the writer's
compiled codec shaped to the reader's record (what the codec does for
add/remove-field changes), and the same through fastavro's general schema
resolution (the baseline, and the fallback for other changes).

    ./dev bench schema_resolution.py --events 20000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastavro

from benchmarks import codec_speed
from benchmarks.common import machine
from shadowstream.schemas import COMPARISON, REQUEST, EventCodec, SchemaRegistry
from shadowstream.schemas.codec import HEADER_SIZE, load_history
from shadowstream.schemas.resolve import _general

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
RECORDS = {
    "RequestEvent": {**codec_speed.REQUEST, "traceparent": TRACE},
    "ComparisonEvent": {
        **codec_speed.COMPARISON,
        "trace_id": TRACE[3:35],
        "span_id": TRACE[36:52],
    },
}


def per_event_us(decode: Any, events: list[bytes]) -> float:
    started = time.perf_counter()
    for data in events:
        decode(data)
    return (time.perf_counter() - started) / len(events) * 1e6


def rows(current: EventCodec, old_schema: dict[str, Any], n: int) -> None:
    record = RECORDS[current.name.rsplit(".", 1)[-1]]
    for writer_schema, reader_schema, label in (
        (old_schema, current.schema, "v1 event, v2 reader"),
        (current.schema, old_schema, "v2 event, v1 reader"),
    ):
        writer = EventCodec(writer_schema, SchemaRegistry())
        registry = SchemaRegistry()
        reader = EventCodec(reader_schema, registry)
        registry.register(writer_schema)
        events = [writer.encode(record)] * n
        own = [reader.encode(reader.decode(e)) for e in events]
        general = _general(
            fastavro.parse_schema(writer_schema), fastavro.parse_schema(reader_schema), reader.name
        )
        same = per_event_us(reader.decode, own)
        compiled = per_event_us(reader.decode, events)
        slow = per_event_us(lambda d, g=general: g(d, HEADER_SIZE), events)
        path = reader.resolution_paths[writer.fingerprint]
        print(
            f"{reader.name.rsplit('.', 1)[-1]:16}{label:22}{same:>10.2f}{compiled:>12.2f} ({path})"
            f"{slow:>12.2f}{slow / compiled:>8.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    print(
        f"Decode per event, us - {machine()}; {args.events:,} events per cell; codec {REQUEST.backend}"
    )
    print(
        f"{'event':16}{'versions':22}{'same ver.':>10}{'other ver.':>22}{'fastavro':>12}{'gain':>8}"
    )
    rows(REQUEST, load_history("request_event")[0], args.events)
    rows(COMPARISON, load_history("comparison_event")[0], args.events)


if __name__ == "__main__":
    main()
