"""Faults on real processes: kill -9 mid-run, ClickHouse outage, a hung challenger.

Every test is bounded in time and stops only the processes it started.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shadowstream.pipeline.app import Roles
from shadowstream.pipeline.processes import AgentProcess
from tests.support.harness import count, emit_traffic, start_pipeline, wait_for

pytestmark = pytest.mark.slow


def challenger(name: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "callable": f"tests.support.models:{fn}", "concurrency": 64, **extra}


def emit_in_background(
    settings: Any, n: int, chunks: int = 20, pause: float = 0.4
) -> threading.Thread:
    """n requests in `chunks` bursts, so a kill lands in the middle of the run."""

    def run() -> None:
        per = n // chunks
        for c in range(chunks):
            emit_traffic(settings, per, prefix=f"req{c}")
            time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_kill_9_router_and_worker_mid_run_loses_and_duplicates_nothing(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(
        join_window_seconds=60.0,
        late_retention_seconds=600.0,
        challengers=[challenger("same", "same"), challenger("quarter", "different_quarter")],
    )
    router = AgentProcess(settings, ["worker", "router"], tmp_path, "router")
    workers = AgentProcess(
        settings,
        ["worker", "challenger", "--name", "same", "--name", "quarter"],
        tmp_path,
        "workers",
    )

    async def scenario() -> None:
        sink = await start_pipeline(settings, Roles(sink=True))
        try:
            router.start()
            workers.start()
            router.wait_ready()
            workers.wait_ready()
            wh = sink.warehouse
            emitter = emit_in_background(settings, 20_000)
            await wait_for(lambda: count(wh) >= 6_000, 120, what="a third of the run")
            killed_router_at = count(wh)
            router.kill9()
            router.start()
            await wait_for(lambda: count(wh) >= 20_000, 180, what="half of the run")
            killed_workers_at = count(wh)
            workers.kill9()
            workers.start()
            router.wait_ready()
            workers.wait_ready()
            emitter.join(timeout=120)
            await wait_for(lambda: count(wh) >= 40_000, 240, what="40,000 comparisons")
            await asyncio.sleep(3)
            db = wh.database
            assert count(wh) == 40_000
            stored = wh.query(
                f"""SELECT challenger, count(), countIf(outcome = 'both_answered'), countIf(diverged)
                FROM {db}.comparisons FINAL WHERE is_late = 0 GROUP BY challenger ORDER BY challenger"""
            ).rows
            assert stored == [("quarter", 20_000, 20_000, 5_000), ("same", 20_000, 20_000, 0)]
            inserted = sink.metrics()["sink"]["inserted_comparisons"]
            print(
                f"\nkill -9 router at {killed_router_at:,} stored, worker at {killed_workers_at:,}: "
                f"{inserted:,} comparisons inserted, {count(wh):,} after dedup (FINAL)"
            )
        finally:
            router.stop()
            workers.stop()
            await sink.stop()

    asyncio.run(scenario())


def test_offsets_never_pass_a_request_still_in_flight(make_settings: Any, tmp_path: Path) -> None:
    """faust-streaming#606: with concurrency > 1, a fast request must not commit a slow one.

    req-0 is held until the test releases it (not for a fixed time, which a loaded
    machine could outlast before the others were even stored): the worker commits
    several times while it is in flight, and its committed offset must stay at req-0.
    """
    settings = make_settings(
        partitions=1,
        join_window_seconds=120.0,
        challengers=[challenger("held", "held_until_released", timeout_seconds=100)],
    )
    worker = AgentProcess(settings, ["worker", "challenger", "--name", "held"], tmp_path, "w")
    gate = tmp_path / "release-req-0"

    async def scenario() -> None:
        from confluent_kafka import Consumer, TopicPartition

        from shadowstream.producers import ShadowEmitter
        from tests.support.models import champion_output

        pipeline = await start_pipeline(settings, Roles(router=True, sink=True))
        consumer = Consumer(
            {
                "bootstrap.servers": settings.broker_url.removeprefix("kafka://"),
                "group.id": f"{settings.topic_prefix}.challenger.held",
            }
        )
        topic = f"{settings.topic_prefix}.challenger.held"

        def commits() -> int:
            return int(worker.metrics()["challenger:held"]["commits"])

        def committed() -> int:
            return consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset

        try:
            worker.start()
            worker.wait_ready()
            emitter = ShadowEmitter(
                settings.broker_url, service="test-service", topic_prefix=settings.topic_prefix
            )
            for i in range(50):  # req-0 first: offset 0 of the challenger's topic
                payload = {"i": i, "gate": str(gate)}
                emitter.emit_request(f"req-{i}", "/predict", payload)
                emitter.emit_response(f"req-{i}", champion_output(payload), 5.0)
            assert emitter.flush(30) == 0
            emitter.close()
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 49, 90, what="the 49 fast requests")
            after = commits()
            await wait_for(lambda: commits() >= after + 3, 60, what="three more commits")
            assert count(wh) == 49  # req-0 is still held
            assert committed() <= 0  # at req-0's offset (or nothing committed yet)
            worker.kill9()  # req-0 is in flight; its offset must not have been committed
            gate.touch()
            worker.start()
            worker.wait_ready()
            await wait_for(lambda: count(wh) >= 50, 90, what="the held request, redelivered")
            assert count(wh) == 50
            assert count(wh, "request_id = 'req-0' AND outcome = 'both_answered'") == 1
        finally:
            consumer.close()
            worker.stop()
            await pipeline.stop()

    asyncio.run(scenario())


def test_hung_challenger_times_out_without_slowing_the_other(make_settings: Any) -> None:
    settings = make_settings(
        join_window_seconds=4.0,
        challengers=[
            challenger("healthy", "same"),
            challenger("hung", "hangs", timeout_seconds=1.0, concurrency=4),
        ],
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            started = time.monotonic()
            for burst in range(10):
                emit_traffic(settings, 100, prefix=f"b{burst}")
                await asyncio.sleep(0.2)
            await wait_for(lambda: count(wh, "challenger = 'healthy'") >= 1000, 60, what="healthy")
            healthy_done = time.monotonic() - started
            await wait_for(lambda: count(wh, "challenger = 'hung'") >= 1000, 60, what="hung")
            db = wh.database
            rows = dict(
                (r[0], r[1:])
                for r in wh.query(
                    f"""SELECT challenger, countIf(outcome = 'both_answered'),
                           countIf(outcome = 'challenger_missing'),
                           quantile(0.99)(challenger_latency_ms)
                    FROM {db}.comparisons FINAL WHERE is_late = 0 GROUP BY challenger"""
                ).rows
            )
            assert rows["healthy"][0] == 1000
            assert rows["hung"][1] == 1000  # timeouts (or no answer) are failures
            # the healthy challenger kept up with traffic and its latency stayed low
            assert healthy_done < 15, healthy_done
            assert rows["healthy"][2] < 100, rows["healthy"]
            print(
                f"\nhealthy: all compared {healthy_done:.1f}s after the first request, p99 "
                f"{rows['healthy'][2]:.1f} ms; hung: {rows['hung'][1]} challenger_missing"
            )
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


class _UnreachableClient:
    """Wraps the real clickhouse-connect client; while `down`, inserts fail exactly as
    they do against a ClickHouse server that cannot be reached."""

    def __init__(self, real: Any, error: Exception) -> None:
        self._real = real
        self._error = error
        self.down = False
        self.failed_inserts = 0

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            self.failed_inserts += 1
            raise self._error
        return self._real.raw_insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def unreachable_server_error() -> Exception:
    """The exception clickhouse-connect raises for a refused http:// connection."""
    import clickhouse_connect

    from shadowstream.pipeline.embedded import free_port

    try:
        clickhouse_connect.get_client(host="127.0.0.1", port=free_port(), connect_timeout=2)
    except Exception as exc:
        return exc
    raise AssertionError("a closed port accepted the connection")


def test_clickhouse_outage_pauses_the_sink_and_loses_nothing(make_settings: Any) -> None:
    from clickhouse_connect.driver.exceptions import OperationalError

    from shadowstream.warehouse.client import ClickHouseWarehouse, WarehouseUnavailableError

    error = unreachable_server_error()
    assert isinstance(error, OperationalError)
    settings = make_settings(sink_batch_rows=500, challengers=[challenger("same", "same")])
    holder: dict[str, Any] = {}

    def factory() -> ClickHouseWarehouse:
        warehouse = ClickHouseWarehouse(settings.clickhouse_url, settings.clickhouse_database)
        client = _UnreachableClient(warehouse._client, error)
        warehouse._client = client
        holder["client"] = client
        return warehouse

    # the mapping the sink relies on, checked on the real exception
    from shadowstream.warehouse.client import _map_error

    assert isinstance(_map_error(error, "http://127.0.0.1"), WarehouseUnavailableError)

    async def scenario() -> None:
        from confluent_kafka import Consumer, TopicPartition

        pipeline = await start_pipeline(settings, warehouse_factory=factory)
        sink = pipeline.metrics
        client = holder["client"]
        consumer = Consumer(
            {
                "bootstrap.servers": settings.broker_url.removeprefix("kafka://"),
                "group.id": f"{settings.topic_prefix}.sink",
            }
        )
        topic = f"{settings.topic_prefix}.comparisons"

        def committed() -> int:
            parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
            return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))

        try:
            emit_traffic(settings, 1000, prefix="before")
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 1000, 60, what="comparisons before the outage")
            # a batch's offsets are committed just after its insert is visible: wait for
            # the commit too, or it lands during the outage and looks like a lost batch
            await wait_for(lambda: committed() >= 1000, 30, what="offsets of the first 1000")
            before = committed()
            client.down = True
            outage_started = time.monotonic()
            emit_traffic(settings, 3000, prefix="during")
            max_pending = 0
            while time.monotonic() - outage_started < 30:
                metrics = sink()["sink"]
                max_pending = max(max_pending, metrics["pending_rows"])
                await asyncio.sleep(0.5)
            metrics = sink()["sink"]
            assert metrics["paused"] is True
            assert client.failed_inserts >= 4  # retried, with backoff (not thousands of times)
            assert client.failed_inserts < 60
            assert committed() == before  # nothing committed while ClickHouse was away
            # memory bounded: the batch that failed and the next one (filled while the
            # first was being stored), then consumption paused
            assert max_pending <= 2 * 500
            assert count(wh) == 1000
            client.down = False
            await wait_for(lambda: count(wh) >= 4000, 90, what="catch-up after the outage")
            await asyncio.sleep(2)
            assert count(wh) == 4000
            assert committed() > before
            print(
                f"\noutage 30 s: {client.failed_inserts} failed inserts, max pending "
                f"{max_pending} rows, then all 4000 comparisons stored once"
            )
        finally:
            consumer.close()
            await pipeline.stop()

    asyncio.run(scenario())


def test_sink_killed_mid_batch_and_restarted_stores_everything_once(
    make_settings: Any, tmp_path: Path
) -> None:
    from shadowstream.warehouse.client import open_warehouse

    own_db = f"chdb://{tmp_path / 'sink-chdb'}"
    settings = make_settings(
        clickhouse_url=own_db,
        sink_batch_rows=400,
        sink_batch_seconds=1.0,
        challengers=[challenger("same", "same")],
    )
    sink = AgentProcess(settings, ["worker", "sink"], tmp_path, "sink")

    def stored() -> int:
        # the sink process owns its chDB directory: queries are routed to it
        try:
            return count(open_warehouse(own_db, settings.clickhouse_database))
        except Exception:
            return -1

    def stored_requests() -> int:
        try:
            wh = open_warehouse(own_db, settings.clickhouse_database)
            return int(wh.query(f"SELECT count() FROM {wh.database}.requests FINAL").scalar())
        except Exception:
            return -1

    async def scenario() -> None:
        pipeline = await start_pipeline(settings, Roles(router=True, challengers=["same"]))
        try:
            sink.start()
            sink.wait_ready()
            emitter = emit_in_background(settings, 6000, chunks=30, pause=0.2)
            await wait_for(lambda: stored() >= 1500, 90, what="some batches stored")
            at_kill = stored()
            sink.kill9()
            sink.start()
            sink.wait_ready()
            emitter.join(timeout=60)
            await wait_for(lambda: stored() >= 6000, 120, what="6000 comparisons after restart")
            # a batch's raw requests are inserted after its comparisons: wait for them
            # too, or the last batch's look missing
            await wait_for(lambda: stored_requests() >= 6000, 60, what="6000 raw requests")
            assert stored() == 6000
            assert stored_requests() == 6000
            print(f"\nsink killed at {at_kill} stored; after restart {stored()} (exact)")
        finally:
            sink.stop()
            await pipeline.stop()

    asyncio.run(scenario())
