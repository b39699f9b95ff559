"""Ranked lists, resources as distributions and the projected bill, on the real components.

1. A search service shadowed through the embedded broker, the agents and chDB:
   the rebuilt index changes every 4th request's top 10 (the ``legal``
   collection). The stored measures are the comparator's own, the report's
   distributions and slices come from the rollups and agree with ``--exact``,
   the changed requests are examples naming their new documents, resources
   come out as exact quantiles, the bill is projected from the router's stats,
   and the gate fails on resource use when told to.
2. Comparisons inserted the way the sink does (no broker): re-deliveries count
   once in every new rollup, hostile measure values (NaN, infinity) are left
   out, comparisons stored before migration 0041 are backfilled, and a batch
   experiment's bill is projected at the live rate and at the batch price.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shadowstream.analytics.gate import run_gate
from shadowstream.analytics.html import render_html
from shadowstream.analytics.model import Report
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.analytics.resources import ResourceOptions
from shadowstream.producers import ShadowEmitter
from shadowstream.sinks.clickhouse import migrations
from shadowstream.stream_agents.comparators import build_comparator
from shadowstream.stream_agents.comparators.ranked import RankedListComparator
from shadowstream.warehouse.client import Warehouse, connect
from tests.support import synthetic
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.ranked_models import champion_results, rebuilt_results

N = 200
RANKED = {"path": "$.results", "id_path": "doc_id", "k": 10, "measure": "jaccard",
          "threshold": 0.85}  # fmt: skip


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def emit_searches(settings: Any) -> None:
    emitter = ShadowEmitter(
        settings.broker_url, service="search", topic_prefix=settings.topic_prefix
    )
    for i in range(N):
        rid, payload = f"q-{i}", {"i": i}
        collection = "legal" if i % 4 == 0 else "docs"
        emitter.emit_request(rid, "/v1/search", payload, attributes={"collection": collection})
        emitter.emit_response(
            rid, champion_results(payload), 5.0, tokens_in=10, tokens_out=i % 7 + 1,
            tool_calls=1, cost=0.001,
        )  # fmt: skip
    assert emitter.flush(30) == 0 and emitter.stats().dropped == 0
    emitter.close()


def by(rows: list[Any], **keys: str) -> Any:
    return next(r for r in rows if all(getattr(r, k) == v for k, v in keys.items()))


def test_rebuilt_index_shadowed_end_to_end(make_settings: Any) -> None:
    settings = make_settings(
        challengers=[
            {
                "name": "rebuilt",
                "callable": "tests.support.ranked_models:rebuilt",
                "comparator": {"kind": "ranked", "options": RANKED},
            },
        ],
        gate={
            "min_samples": 50,
            "resources": {
                "max_p95_increase_pct": {"tokens_out": 10},
                "over_limit": {"tool_calls": {"limit": 1, "max_share": 0.9}},
                "max_monthly_cost": 1e12,
            },
        },
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            emit_searches(settings)
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= N, 120, what=f"{N} comparisons")
            await wait_for(lambda: _stats_rows(wh) > 0, 60, what="the router's stats")
            check_stored_measures(wh)
            report = build_report(Scope(wh, TimeRange()), _options(charts=True))
            check_report(report)
            exact = build_report(Scope(wh, TimeRange(), exact=True), _options())
            assert _numbers(exact) == _numbers(report)
            check_gate(wh, settings)
            html = render_html(report)
            assert "tool calls per request" in html and "distribution of rbo@10,p=0.9" in html
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


def _stats_rows(wh: Warehouse) -> int:
    sql = f"SELECT count() FROM {wh.database}.agent_stats WHERE stage = 'router'"
    return int(wh.query(sql).scalar() or 0)


def _options(**extra: Any) -> ReportOptions:
    return ReportOptions(resources=ResourceOptions(limits={"tokens_out": 8}), **extra)


def _numbers(report: Report) -> list[Any]:
    measures = [(m.measure, m.spread.n, round(m.spread.mean or 0, 9), m.spread.p10)
                for m in report.measures]  # fmt: skip
    resources = [
        (r.metric, s.spread.n, s.spread.p50, s.spread.p95, s.spread.p99)
        for r in report.resources
        for s in (r.champion, r.challenger_side)
        if s is not None
    ]
    return [measures, resources]


def check_stored_measures(wh: Warehouse) -> None:
    """Each comparison carries exactly what the comparator measures, identical answers too."""
    comparator = build_comparator("ranked", RANKED)
    assert isinstance(comparator, RankedListComparator)
    rows = wh.query(
        f"SELECT request_id, measures, diverged FROM {wh.database}.comparison_measures FINAL"
    ).rows
    assert len(rows) == N
    for request_id, measures, diverged in rows:
        payload = {"i": int(str(request_id).split("-")[1])}
        expected = comparator.compare(champion_results(payload), rebuilt_results(payload))
        assert dict(measures) == pytest.approx(dict(expected.measures), abs=1e-9)
        assert diverged == expected.diverged


def check_report(report: Report) -> None:
    row = report.challengers[0]
    assert (row.divergence.k, row.divergence.n) == (N // 4, N)  # jaccard 9/11 < 0.85
    comparator = build_comparator("ranked", RANKED)
    changed = dict(
        comparator.compare(champion_results({"i": 0}), rebuilt_results({"i": 0})).measures
    )
    rbo = by(report.measures, measure="rbo@10,p=0.9").spread
    assert rbo.n == N
    assert rbo.mean == pytest.approx((changed["rbo@10,p=0.9"] * N / 4 + 0.75 * N) / N, abs=1e-9)
    assert rbo.p10 == pytest.approx(changed["rbo@10,p=0.9"], abs=5e-4)
    assert rbo.p50 == 1.0
    shared = by(report.measures, measure="shared@10").spread
    assert shared.p10 == 9.0 and shared.mean == pytest.approx(9.75)
    legal = by(report.measure_slices, measure="rbo@10,p=0.9", value="legal")
    assert legal.significant and legal.spread.mean == pytest.approx(changed["rbo@10,p=0.9"])
    example = report.examples[0]
    assert example.attributes == {"collection": "legal"}
    assert f"new in top-10: new-{example.request_id.split('-')[1]}" in example.diff_summary
    # resources: integer quantiles exactly (nearest rank), the limit's share exactly
    champion_out = [float(i % 7 + 1) for i in range(N)]
    challenger_out = [float(2 * (i % 7) + 2) for i in range(N)]
    tokens = by(report.resources, metric="tokens_out")
    assert tokens.champion is not None and tokens.challenger_side is not None
    for q, field in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        assert getattr(tokens.champion.spread, field) == exact_quantile(champion_out, q)
        assert getattr(tokens.challenger_side.spread, field) == exact_quantile(challenger_out, q)
    over = tokens.challenger_side.over_limit
    assert over is not None and over.count == sum(1 for v in challenger_out if v > 8)
    calls = by(report.resources, metric="tool_calls")
    assert calls.challenger_side is not None and calls.challenger_side.spread.p95 == 2
    # the bill: every eligible request was sent (router stats), cost 0.002 vs 0.001 each
    projection = report.projections[0]
    assert projection.rate_source == "router stats" and projection.sample_fraction == 1.0
    cost = next(m for m in projection.metrics if m.metric == "cost")
    assert projection.requests_per_day is not None and cost.challenger.per_day is not None
    assert cost.challenger.per_day == pytest.approx(projection.requests_per_day * 0.002)
    assert cost.difference.per_request == pytest.approx(0.001)


def check_gate(wh: Warehouse, settings: Any) -> None:
    result = run_gate(Scope(wh, TimeRange()), settings.gate, "control")[0]
    statuses = {c.name: c.status for c in result.criteria}
    assert statuses["tokens_out p95 increase"] == "fail"  # 13 -> 26 tokens: +100%
    assert statuses["tool_calls over 1"] == "pass"  # half of them: under 90%
    assert statuses["projected monthly cost"] == "pass"
    assert result.verdict == "fail" and result.exit_code == 1


# -- without a broker: re-deliveries, hostile values, backfill, batch pricing -------------------
@pytest.fixture
def warehouse(chdb_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """A database migrated up to 0011 with comparisons in it, then to the end: 0041's
    backfill must pick those comparisons up."""
    wh = connect(chdb_url, f"t_rr_{uuid.uuid4().hex[:10]}")
    everything = migrations.available_migrations
    monkeypatch.setattr(
        migrations, "available_migrations", lambda: [m for m in everything() if m.version < 40]
    )
    migrations.migrate(wh)
    monkeypatch.setattr(migrations, "available_migrations", everything)
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS {wh.database}")


def test_rollups_count_once_skip_hostile_values_backfill_and_price_batches(
    warehouse: Warehouse,
) -> None:
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    reqs = synthetic.requests(400, seed=5, end=end, span=dt.timedelta(minutes=40))
    old = synthetic.generate(reqs[:100], {"agent": synthetic.Behaviour(divergence=0.1)})
    synthetic.insert(warehouse, [{k: v for k, v in e.items() if k != "measures"} for e in old])
    migrations.migrate(warehouse)  # 0040 and 0041, backfilling the first 100
    live = synthetic.generate(reqs[100:], {"agent": synthetic.Behaviour(divergence=0.1)})
    for i, event in enumerate(live):
        event["measures"] = {"rbo@10,p=0.9": (i % 10) / 10, "shared@10": float(i % 11)}
        event["challenger_tokens_out"] = 30 + i % 50
    live[0]["measures"] = {"rbo@10,p=0.9": math.nan, "shared@10": math.inf}
    batch = synthetic.generate(reqs[:50], {"agent": synthetic.Behaviour()}, experiment_id="batch-1")
    synthetic.insert(warehouse, live + batch)
    # re-delivered: 60 in a later insert, 20 twice within one
    synthetic.insert(
        warehouse, [{**e, "compared_at_us": e["compared_at_us"] + 1} for e in live[:60]]
    )
    synthetic.insert(warehouse, [e for e in live[100:120] for _ in range(2)])

    options = ReportOptions(resources=ResourceOptions(limits={"tokens_out": 60}))
    rollup = build_report(Scope(warehouse, TimeRange()), options)
    exact = build_report(Scope(warehouse, TimeRange(), exact=True), options)
    assert _numbers(rollup) == _numbers(exact)
    rbo = by(rollup.measures, measure="rbo@10,p=0.9", experiment_id="live").spread
    assert rbo.n == 299  # 300 live comparisons, the NaN one left out
    values = [(i % 10) / 10 for i in range(1, 300)]
    assert rbo.mean == pytest.approx(sum(values) / len(values), abs=1e-9)
    tokens = by(rollup.resources, metric="tokens_out", experiment_id="live")
    assert tokens.champion is not None and tokens.champion.spread.n == 400  # 100 backfilled
    outs = [30.0] * 100 + [float(30 + i % 50) for i in range(300)]
    assert tokens.challenger_side is not None
    assert tokens.challenger_side.spread.p95 == pytest.approx(exact_quantile(outs, 0.95), rel=0.01)
    # no router stats here: the rate is the live comparisons' own, sampling assumed 1
    live_bill = by(rollup.projections, experiment_id="live")
    batch_bill = by(rollup.projections, experiment_id="batch-1")
    assert live_bill.rate_source == "assumed" and batch_bill.requests_per_day == pytest.approx(
        live_bill.requests_per_day
    )
    at_batch = next(m for m in batch_bill.metrics if m.metric == "cost at batch price")
    at_live = next(m for m in batch_bill.metrics if m.metric == "cost")
    assert at_batch.challenger.per_day == pytest.approx((at_live.challenger.per_day or 0) * 0.5)
    assert batch_bill.batch_price_factor == 0.5
