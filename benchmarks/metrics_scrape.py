"""What /metrics costs: a Prometheus scrape of a running all-in-one process, side by side
with /metrics.json (the baseline: the same figures as before, as JSON), and the cost of
reading one librdkafka statistics report (every 5 s per consumer, on its poll thread).

Starts the embedded broker and `shadow run`'s agents in this process (router, two
challengers, sink on a temporary chDB), sends --requests requests, then times
--scrapes GETs of each endpoint.

    ./dev bench metrics_scrape.py --requests 2000 --scrapes 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from shadowstream.core.config import load_settings
from shadowstream.pipeline.app import Pipeline, Roles, create_topics
from shadowstream.pipeline.embedded import EmbeddedBroker
from shadowstream.runtime.kafka_io import BatchConsumer
from shadowstream.runtime.kafka_stats import parse_client_stats
from tests.support.harness import emit_traffic


def timed_gets(url: str, n: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            size = len(response.read())
        times.append((time.perf_counter() - start) * 1000)
    return times, size


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms"


async def main(args: argparse.Namespace) -> None:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as data:
        settings = load_settings(
            None,
            broker_url=broker.url,
            clickhouse_url=f"chdb://{data}/chdb",
            partitions=8,
            kafka_session_timeout_ms=6000,
            challengers=[
                {"name": "a", "callable": "tests.support.models:same"},
                {"name": "b", "callable": "tests.support.models:different_quarter"},
            ],
        )
        create_topics(settings)
        pipeline = Pipeline(settings, Roles.everything(settings))
        await pipeline.start()
        await pipeline.wait_ready(timeout=120)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, emit_traffic, settings, args.requests)
        await asyncio.sleep(8)  # joins close, statistics reported
        base = f"http://127.0.0.1:{pipeline.web_port}"
        prom, prom_size = await loop.run_in_executor(
            None, timed_gets, f"{base}/metrics", args.scrapes
        )
        js, js_size = await loop.run_in_executor(
            None, timed_gets, f"{base}/metrics.json", args.scrapes
        )
        lag_partitions = [
            len(service.consumer.statistics.last.lag)
            for service in pipeline.services
            if isinstance(getattr(service, "consumer", None), BatchConsumer)
            and service.consumer.statistics.last is not None  # type: ignore[attr-defined]
        ]
        await pipeline.stop()
    print(machine())
    print(
        f"all-in-one process, 8 partitions, {args.requests} requests, {args.scrapes} scrapes each"
    )
    print(f"  /metrics       (Prometheus text, {prom_size:,} bytes)  {summary(prom)}")
    print(f"  /metrics.json  (baseline JSON,   {js_size:,} bytes)  {summary(js)}")
    print(f"  partitions with lag per consumer: {lag_partitions}")
    doc = sample_statistics(partitions=24)
    start = time.perf_counter()
    for _ in range(1000):
        parse_client_stats(doc)
    per = (time.perf_counter() - start) / 1000 * 1e6
    print(
        f"  one librdkafka report read ({len(doc):,} bytes, 24 partitions): {per:,.0f} µs "
        "(every 5 s per consumer)"
    )


def sample_statistics(partitions: int) -> str:
    """A librdkafka consumer report shaped like the router's (3 topics)."""
    import json

    part = {
        "partition": 0,
        "broker": 1,
        "leader": 1,
        "desired": True,
        "unknown": False,
        "msgq_cnt": 0,
        "msgq_bytes": 0,
        "xmit_msgq_cnt": 0,
        "fetchq_cnt": 12,
        "fetchq_size": 9000,
        "fetch_state": "active",
        "query_offset": -1001,
        "next_offset": 1000,
        "app_offset": 990,
        "stored_offset": -1001,
        "committed_offset": 900,
        "eof_offset": 1000,
        "lo_offset": -1,
        "hi_offset": 1000,
        "ls_offset": 1000,
        "consumer_lag": 100,
        "consumer_lag_stored": 1000,
        "txmsgs": 0,
        "txbytes": 0,
        "rxmsgs": 1000,
        "rxbytes": 800000,
        "msgs": 1000,
        "rx_ver_drops": 0,
    }
    topics = {
        f"shadow.t{t}": {
            "topic": f"shadow.t{t}",
            "partitions": {str(p): dict(part, partition=p) for p in range(partitions // 3)},
        }
        for t in range(3)
    }
    broker = {
        "name": "k:9092/1",
        "nodeid": 1,
        "nodename": "k:9092",
        "source": "learned",
        "state": "UP",
        "rtt": {"min": 1, "max": 9, "avg": 3, "p99": 8},
    }
    return json.dumps(
        {
            "type": "consumer",
            "brokers": {"k:9092/1": broker},
            "topics": topics,
            "cgrp": {"state": "up", "assignment_size": partitions, "rebalance_cnt": 1},
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--scrapes", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
