"""Helpers for integration tests: run a pipeline in-process, wait for counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from shadowstream.core.config import Settings
from shadowstream.pipeline.app import Pipeline, Roles, create_topics
from shadowstream.producers import ShadowEmitter
from shadowstream.warehouse.client import Warehouse
from tests.support.models import champion_output


async def start_pipeline(settings: Settings, roles: Roles | None = None, **kwargs: Any) -> Pipeline:
    create_topics(settings)
    pipeline = Pipeline(settings, roles or Roles.everything(settings), **kwargs)
    await pipeline.start()
    await pipeline.wait_ready(timeout=60)
    return pipeline


def emit_traffic(
    settings: Settings,
    n: int,
    *,
    champion_latency_ms: float = 5.0,
    prefix: str = "req",
    attributes: Callable[[int], dict[str, str]] | None = None,
    endpoint: str = "/predict",
) -> list[str]:
    """n requests and their champion responses, through the SDK."""
    emitter = ShadowEmitter(
        settings.broker_url, service="test-service", topic_prefix=settings.topic_prefix
    )
    ids = []
    for i in range(n):
        rid = f"{prefix}-{i}"
        payload = {"i": i}
        emitter.emit_request(
            rid, endpoint, payload, attributes=attributes(i) if attributes else None
        )
        emitter.emit_response(
            rid, champion_output(payload), champion_latency_ms, tokens_in=10, tokens_out=i % 7
        )
        ids.append(rid)
    assert emitter.flush(30) == 0
    stats = emitter.stats()
    assert stats.dropped == 0, stats
    emitter.close()
    return ids


async def wait_for(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.5, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def count(warehouse: Warehouse, where: str = "1", **params: Any) -> int:
    """Comparisons stored once each (FINAL), late arrivals not included."""
    sql = (
        f"SELECT count() FROM {warehouse.database}.comparisons FINAL "
        f"WHERE is_late = 0 AND ({where})"
    )
    return int(warehouse.query(sql, params).scalar() or 0)


def dump_tables(warehouse: Warehouse) -> dict[str, str]:
    """Every stored row of every table of the test's database, as text."""
    db = warehouse.database
    tables = warehouse.query(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine NOT IN ('Null', 'MaterializedView', 'View')",
        {"db": db},
    ).rows
    out = {}
    for (name,) in tables:
        columns = warehouse.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} "
            "AND table = {t:String} ORDER BY position",
            {"db": db, "t": name},
        ).rows
        # aggregate states (the rollups) finalized into what a query would show
        select = ", ".join(
            f"finalizeAggregation(`{c}`)" if str(t).startswith("AggregateFunction") else f"`{c}`"
            for c, t in columns
        )
        out[str(name)] = repr(warehouse.query(f"SELECT {select} FROM {db}.`{name}`").rows)
    return out
