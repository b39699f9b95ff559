"""The naive baseline: the straightforward Faust pipeline, one event at a time.

Fan-out agent, one agent per challenger (no-op model), a join agent that keeps
each request's sides in a Faust Table (changelog-backed), and a sink agent that
inserts comparisons into ClickHouse with ``stream.take()``. This is what a
first Faust implementation looks like; the benchmarks run it side by side
with Shadowstream's batched agents.

It scales out the way Faust apps do: start the same command N times and the
workers share the consumer group. Requests, responses and the join table's
changelog have the same number of partitions and the same key (the request
id), so Faust's assignor gives each worker the same partitions of all three
and every join stays local. Each worker needs its own ``--chdb`` directory
(chDB runs one engine per directory); against a ClickHouse server they would
share one.

Events are Avro with fastavro (schema parsed once), as the issue's baseline
describes it. ``--codec c`` gives it Shadowstream's own C codec instead, to
see how much of the gap is the design rather than the codec.

    python benchmarks/naive_faust.py --broker 127.0.0.1:9092 --prefix bench \\
        --challengers a,b --chdb /tmp/naive-chdb --partitions 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import faust
import orjson

from shadowstream.schemas import EventCodec, SchemaRegistry, load_schema


def build_app(
    broker: str, prefix: str, challengers: list[str], chdb: str, partitions: int, codec: str
) -> faust.App:
    registry = SchemaRegistry()
    REQUEST, RESPONSE, COMPARISON = (
        EventCodec(load_schema(name), registry, backend=codec)
        for name in ("request_event", "response_event", "comparison_event")
    )
    app = faust.App(
        f"{prefix}-naive",
        datadir=str(Path(chdb).parent / f"naive-faust-{Path(chdb).name}"),  # per worker
        broker=f"kafka://{broker}",
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=1,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        web_enabled=False,
        autodiscover=False,
    )
    raw: dict[str, Any] = {
        "value_serializer": "raw",
        "key_serializer": "raw",
        "partitions": partitions,
    }
    requests = app.topic(f"{prefix}.requests", **raw)
    responses = app.topic(f"{prefix}.responses", **raw)
    comparisons = app.topic(f"{prefix}.comparisons", **raw)
    to_challenger = {name: app.topic(f"{prefix}.challenger.{name}", **raw) for name in challengers}
    joins = app.Table(f"{prefix}-naive-join", default=dict, partitions=partitions)
    stats = {"comparisons": 0, "stored": 0}

    @app.agent(requests)
    async def fanout(stream: Any) -> None:
        async for key, value in stream.items():
            request = REQUEST.decode(value)
            for topic in to_challenger.values():
                await topic.send(key=key, value=value)
            state = dict(joins[request["request_id"]])
            state["request"] = {
                k: request[k]
                for k in (
                    "request_id",
                    "experiment_id",
                    "service",
                    "endpoint",
                    "champion_model",
                    "timestamp_us",
                    "attributes",
                )
            }
            await _maybe_emit(request["request_id"], state)

    for name, topic in to_challenger.items():

        async def challenger(stream: Any, name: str = name) -> None:
            async for key, value in stream.items():
                request = REQUEST.decode(value)
                started = time.perf_counter()
                output = orjson.loads(request["payload"])  # the no-op model
                await responses.send(
                    key=key,
                    value=RESPONSE.encode(
                        {
                            "request_id": request["request_id"],
                            "timestamp_us": time.time_ns() // 1000,
                            "role": "challenger",
                            "challenger": name,
                            "model": name,
                            "output": orjson.dumps(output).decode(),
                            "latency_ms": (time.perf_counter() - started) * 1000,
                            "status": "ok",
                            "usage": {},
                            "experiment_id": request["experiment_id"],
                        }
                    ),
                )

        app.agent(topic, name=f"challenger-{name}")(challenger)

    @app.agent(responses)
    async def join(stream: Any) -> None:
        async for value in stream:
            response = RESPONSE.decode(value)
            rid = response["request_id"]
            state = dict(joins[rid])
            side = "champion" if response["role"] == "champion" else response["challenger"]
            state[side] = {k: response[k] for k in ("output", "latency_ms", "status", "model")}
            await _maybe_emit(rid, state)

    async def _maybe_emit(rid: str, state: dict[str, Any]) -> None:
        request, champion = state.get("request"), state.get("champion")
        done = state.setdefault("done", [])
        if request is not None and champion is not None:
            for name in challengers:
                side = state.get(name)
                if side is None or name in done:
                    continue
                await comparisons.send(
                    key=rid.encode(),
                    value=COMPARISON.encode(
                        {
                            "request_id": rid,
                            "challenger": name,
                            "experiment_id": request["experiment_id"],
                            "outcome": "both_answered",
                            "service": request["service"],
                            "endpoint": request["endpoint"],
                            "request_ts_us": request["timestamp_us"],
                            "compared_at_us": time.time_ns() // 1000,
                            "champion_status": champion["status"],
                            "challenger_status": side["status"],
                            "champion_latency_ms": champion["latency_ms"],
                            "challenger_latency_ms": side["latency_ms"],
                            "latency_delta_ms": side["latency_ms"] - champion["latency_ms"],
                            "diverged": side["output"] != champion["output"],
                            "attributes": request["attributes"],
                        }
                    ),
                )
                done.append(name)
                stats["comparisons"] += 1
        if len(done) == len(challengers):
            joins.pop(rid, None)
        else:
            joins[rid] = state

    @app.agent(comparisons)
    async def sink(stream: Any) -> None:
        import clickhouse_connect

        client = clickhouse_connect.get_client(interface="chdb", path=chdb)
        client.command(
            "CREATE TABLE IF NOT EXISTS naive_comparisons (request_id String, challenger String, "
            "diverged Nullable(Bool), latency_delta_ms Nullable(Float64), request_ts_us Int64, "
            "inserted_at DateTime64(3) DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY (challenger, request_id)"
        )
        async for values in stream.take(5000, within=1.0):
            rows = []
            for value in values:
                c = COMPARISON.decode(value)
                rows.append(
                    [
                        c["request_id"],
                        c["challenger"],
                        c["diverged"],
                        c["latency_delta_ms"],
                        c["request_ts_us"],
                    ]
                )
            await asyncio.get_running_loop().run_in_executor(
                None,
                lambda rows=rows: client.insert(
                    "naive_comparisons",
                    rows,
                    column_names=[
                        "request_id",
                        "challenger",
                        "diverged",
                        "latency_delta_ms",
                        "request_ts_us",
                    ],
                ),
            )
            stats["stored"] += len(rows)

    @app.timer(1.0)
    async def report() -> None:
        print(json.dumps({"t": time.time(), **stats}), flush=True)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--challengers", default="a,b")
    parser.add_argument("--chdb", required=True)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--codec", choices=["fastavro", "python", "c"], default="fastavro")
    args = parser.parse_args()
    app = build_app(
        args.broker,
        args.prefix,
        args.challengers.split(","),
        args.chdb,
        args.partitions,
        args.codec,
    )
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
