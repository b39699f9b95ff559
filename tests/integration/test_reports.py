"""Reports and the gate on planted data in chDB (no broker needed).

One database holds a scenario with known answers:

* ``control``  - the A/A control: re-runs the champion, diverges 2% (the noise floor);
* ``twin``     - behaves exactly like the control (must not look worse than the floor);
* ``de_bug``   - fine, except it diverges on half of the German requests;
* ``slowpoke`` - same answers, 1.6x the latency;
* ``flaky``    - 6% errors, 5% malformed output;
* ``newbie``   - only 50 comparisons so far.

Part of it is inserted twice (a separate insert, and twice inside one insert):
every number must count each comparison once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from shadowstream.analytics.gate import overall_exit_code, run_gate
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.cli.main import cli
from shadowstream.core.config import GateSpec
from shadowstream.sinks.clickhouse.migrations import available_migrations, migrate
from shadowstream.warehouse.client import Warehouse, connect
from tests.support import synthetic
from tests.support.synthetic import Behaviour

N = synthetic.PLANTED_N
BEHAVIOURS = synthetic.planted_behaviours()


@pytest.fixture(scope="module")
def planted(chdb_url: str) -> Iterator[Warehouse]:
    warehouse = connect(chdb_url, f"t_rep_{uuid.uuid4().hex[:10]}")
    migrate(warehouse)
    synthetic.insert_planted(warehouse)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def _report(warehouse: Warehouse, exact: bool = False, **options: Any) -> Any:
    return build_report(Scope(warehouse, TimeRange(), "", exact), ReportOptions(**options))


def _by_name(report: Any) -> dict[str, Any]:
    return {r.challenger: r for r in report.challengers}


def test_each_comparison_counts_once_and_rollups_match_final(planted: Warehouse) -> None:
    rollup = _by_name(_report(planted, charts=True))
    exact = _by_name(_report(planted, exact=True, charts=True))
    assert {name: r.comparisons for name, r in rollup.items()} == {
        **{name: N for name in BEHAVIOURS},
        "newbie": 50,
    }
    for name, row in rollup.items():
        other = exact[name]
        assert (row.divergence.k, row.divergence.n) == (other.divergence.k, other.divergence.n)
        assert row.challenger_side.errors == other.challenger_side.errors
        assert row.challenger_side.invalid_format == other.challenger_side.invalid_format
        assert row.challenger_side.tokens_out == other.challenger_side.tokens_out
    stored = planted.query(
        f"SELECT count() FROM {planted.database}.comparisons FINAL WHERE is_late = 0"
    ).scalar()
    assert stored == N * len(BEHAVIOURS) + 50


def test_a_bug_on_one_attribute_value_is_the_top_slice(planted: Warehouse) -> None:
    report = _report(planted)
    de_bug = [s for s in report.slices if s.challenger == "de_bug"]
    top = de_bug[0]
    assert (top.attribute, top.value) == ("language", "de")
    assert top.significant
    assert top.lift is not None and top.lift > 5
    assert [s for s in de_bug if s.significant] == [top]
    # the A/A twin and the control have no significant slice
    assert not [s for s in report.slices if s.challenger in ("twin", "control") and s.significant]


def test_noise_floor_separates_a_real_difference_from_an_aa_twin(planted: Warehouse) -> None:
    rows = _by_name(_report(planted))
    assert rows["control"].is_control and rows["control"].floor is None
    twin = rows["twin"].floor
    assert twin is not None and not twin.significant
    assert twin.low is not None and twin.high is not None and twin.low < 0 < twin.high
    de_bug = rows["de_bug"].floor
    assert de_bug is not None and de_bug.significant and de_bug.low is not None
    assert de_bug.low > 0.05
    divergence = rows["de_bug"].divergence
    assert divergence.low is not None and divergence.high is not None
    assert divergence.low < 0.75 * 0.02 + 0.25 * 0.5 < divergence.high


def test_latency_failures_and_usage(planted: Warehouse) -> None:
    rows = _by_name(_report(planted))
    slow = rows["slowpoke"].latency_delta
    assert slow.p95_pct is not None and 40 < slow.p95_pct < 85
    twin = rows["twin"].latency_delta
    assert twin.p95_pct is not None and abs(twin.p95_pct) < 10
    flaky = rows["flaky"]
    assert flaky.challenger_side.errors.value is not None
    assert 0.04 < flaky.challenger_side.errors.value < 0.08
    assert flaky.champion.errors.value == 0
    invalid = flaky.challenger_side.invalid_format.value
    assert invalid is not None and 0.03 < invalid < 0.07
    assert flaky.failure_increase_ci is not None and flaky.failure_increase_ci.low > 0.03
    assert rows["twin"].champion.tokens_in == 100
    assert rows["twin"].challenger_side.tokens_out == 30
    assert rows["twin"].challenger_side.tool_calls == 2
    examples = [e for e in _report(planted).examples if e.challenger == "flaky"]
    assert examples and {e.kind for e in examples} <= {"diverged", "failed", "invalid_format"}
    times = [e.request_time for e in examples]
    assert times == sorted(times, reverse=True)


def test_gate_verdicts(planted: Warehouse) -> None:
    scope = Scope(planted, TimeRange())
    spec = GateSpec()
    results = {r.challenger: r for r in run_gate(scope, spec, "control")}
    assert "control" not in results
    assert results["twin"].verdict == "promote", results["twin"].criteria
    slow = {c.name: c for c in results["slowpoke"].criteria}
    assert results["slowpoke"].verdict == "fail"
    assert slow["latency p95 regression"].status == "fail"
    assert slow["agreement"].status == "pass"
    assert results["de_bug"].verdict == "fail"
    flaky = {c.name: c.status for c in results["flaky"].criteria}
    assert flaky["error-rate increase"] == "fail" and flaky["invalid format"] == "fail"
    assert results["newbie"].verdict == "not enough data"
    assert results["newbie"].exit_code == 2
    assert overall_exit_code(list(results.values())) == 1
    # the A/A twin is not above the floor either, when that criterion is on
    floor_spec = GateSpec(max_divergence_above_floor=0.02)
    (twin,) = run_gate(scope, floor_spec, "control", "twin")
    assert {c.name: c.status for c in twin.criteria}["divergence above floor"] == "pass"
    (de_bug,) = run_gate(scope, floor_spec, "control", "de_bug")
    assert {c.name: c.status for c in de_bug.criteria}["divergence above floor"] == "fail"


def test_latency_can_be_judged_against_the_control(planted: Warehouse) -> None:
    """The control times the champion model on the shadow path: with it as the
    baseline the slow challenger still fails and the A/A twin still passes."""
    scope = Scope(planted, TimeRange())
    spec = GateSpec(latency_baseline="control")
    results = {r.challenger: r for r in run_gate(scope, spec, "control")}

    def latency(name: str) -> Any:
        return {c.name: c for c in results[name].criteria}["latency p95 regression"]

    assert latency("slowpoke").status == "fail" and "vs control" in latency("slowpoke").note
    assert latency("twin").status == "pass"
    (no_control,) = run_gate(scope, spec, "nobody-is-control", "twin")
    assert {c.name: c.status for c in no_control.criteria}["latency p95 regression"] == (
        "undecided"
    )


def test_gate_can_require_agreement_in_every_slice(planted: Warehouse) -> None:
    """A bug confined to language=de fails a per-slice threshold that the overall
    agreement would hide; the A/A twin passes it."""
    scope = Scope(planted, TimeRange())
    spec = GateSpec(min_agreement=0.80, min_slice_agreement=0.85, min_slice_samples=100)
    (de_bug,) = run_gate(scope, spec, "control", "de_bug")
    by_name = {c.name: c for c in de_bug.criteria}
    assert by_name["agreement"].status == "pass"  # 85% overall is above 80%
    assert by_name["slice agreement"].status == "fail"
    assert "language=de" in by_name["slice agreement"].note
    (twin,) = run_gate(scope, spec, "control", "twin")
    assert {c.name: c.status for c in twin.criteria}["slice agreement"] == "pass"
    assert twin.verdict == "promote"


def test_time_range_and_experiment_are_filters(planted: Warehouse) -> None:
    rows = planted.query(
        f"SELECT min(request_time), max(request_time) FROM {planted.database}.comparisons"
    ).rows[0]
    start = rows[0].replace(tzinfo=dt.UTC)
    middle = start + (rows[1].replace(tzinfo=dt.UTC) - start) / 2
    middle = middle.replace(second=0, microsecond=0)
    first_half = build_report(Scope(planted, TimeRange(until=middle)), ReportOptions())
    expected = planted.query(
        f"SELECT count() FROM {planted.database}.comparisons FINAL "
        "WHERE challenger = 'twin' AND request_time < {m:DateTime64(6, 'UTC')}",
        {"m": middle.replace(tzinfo=None)},
    ).scalar()
    assert _by_name(first_half)["twin"].comparisons == expected
    assert 0.3 * N < expected < 0.7 * N
    hostile = "live' OR 1=1 --"
    assert build_report(Scope(planted, TimeRange(), hostile), ReportOptions()).empty


# -- the CLI -----------------------------------------------------------------------------
@pytest.fixture
def run_cli(planted: Warehouse, chdb_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SHADOW_CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("SHADOW_CLICKHOUSE_DATABASE", planted.database)

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run


def test_cli_report_formats(run_cli: Any, tmp_path: Any) -> None:
    table = run_cli("report", "--since", "24h")
    assert table.exit_code == 0, table.output
    assert "language=de" in table.output and "▲ significant" in table.output
    assert "twin" in table.output and "control (A/A)" in table.output
    data = json.loads(run_cli("report", "--format", "json").output)
    assert {r["challenger"] for r in data["challengers"]} >= set(BEHAVIOURS)
    assert data["series"] and data["latency"]
    csv_text = run_cli("report", "--format", "csv", "--challenger", "de_bug").output
    header, *lines = csv_text.strip().splitlines()
    assert header.startswith("experiment_id,challenger,") and len(lines) == 1
    slices = run_cli("report", "--format", "csv", "--section", "slices").output
    assert "language,de" in slices
    html = tmp_path / "report.html"
    result = run_cli("report", "--format", "html", "-o", str(html))
    assert result.exit_code == 0 and "<svg" in html.read_text()


def test_cli_gate_exit_codes(run_cli: Any) -> None:
    """0 promote, 1 fail, 2 not enough data; errors never reuse them."""
    assert run_cli("gate", "--challenger", "twin").exit_code == 0
    slow = run_cli("gate", "--challenger", "slowpoke")
    assert slow.exit_code == 1
    assert "latency p95 regression" in slow.output and "FAIL" in slow.output
    assert run_cli("gate", "--challenger", "newbie").exit_code == 2
    assert run_cli("gate").exit_code == 1
    both = run_cli("gate", "--challenger", "twin", "--challenger", "newbie", "--format", "json")
    data = json.loads(both.output)
    assert both.exit_code == 2 and [r["challenger"] for r in data["results"]] == ["twin", "newbie"]
    data = json.loads(run_cli("gate", "--challenger", "twin", "--format", "json").output)
    assert data["exit_code"] == 0 and data["results"][0]["verdict"] == "promote"
    assert data["results"][0]["control"] == "control"


def test_cli_errors_have_codes_of_their_own(run_cli: Any, tmp_path: Any) -> None:
    unknown = run_cli("gate", "--challenger", "nobody")
    assert unknown.exit_code == 3
    assert "no challenger 'nobody'" in unknown.output and "twin" in unknown.output
    experiment = run_cli("gate", "--experiment", "b-nope")
    assert experiment.exit_code == 3
    assert "no experiment 'b-nope'" in experiment.output and "known: live" in experiment.output
    report = run_cli("report", "--challenger", "twin", "--challenger", "nobody")
    assert report.exit_code == 3 and "no challenger 'nobody'" in report.output
    assert run_cli("gate", "--no-such-option").exit_code == 3
    assert run_cli("--config", str(tmp_path / "missing.toml"), "gate").exit_code == 3
    down = run_cli("gate", "--clickhouse-url", "http://127.0.0.1:9/?connect_timeout=2")
    assert down.exit_code == 4 and "unavailable" in down.output
    for result in (unknown, experiment, down):
        assert "Traceback" not in result.output
    assert "Exit codes: 0 promote" in run_cli("gate", "--help").output


def test_a_store_without_the_report_tables_is_an_error_of_its_own(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOW_CLICKHOUSE_DATABASE", f"t_empty_{uuid.uuid4().hex[:8]}")
    result = run_cli("gate")
    assert result.exit_code == 5 and "shadow db migrate" in result.output


def test_cli_user_mistakes_are_one_line_errors(run_cli: Any) -> None:
    both = run_cli("report", "--since", "1h", "--from", "2026-01-01")
    assert both.exit_code == 3 and "Traceback" not in both.output
    backwards = run_cli("report", "--from", "2026-02-01", "--to", "2026-01-01")
    assert backwards.exit_code == 3
    nope = run_cli("report", "--experiment", "nope")
    assert nope.exit_code == 3 and "no experiment 'nope'" in nope.output


# -- schema: backfill and retention ------------------------------------------------------------
def test_rollups_backfill_comparisons_stored_before_the_migration(chdb_url: str) -> None:
    warehouse = connect(chdb_url, f"t_bf_{uuid.uuid4().hex[:10]}")
    db = warehouse.database
    warehouse.command(f"CREATE DATABASE {db}")
    warehouse.command(
        f"CREATE TABLE {db}.schema_migrations (version UInt32, name String, checksum String, "
        "applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    for m in available_migrations():
        if m.version < 4:
            for statement in m.statements(db, 90):
                warehouse.command(statement)
            warehouse.command(
                f"INSERT INTO {db}.schema_migrations (version, name, checksum) VALUES "
                "({v:UInt32}, {n:String}, {c:String})",
                {"v": m.version, "n": m.name, "c": m.checksum},
            )
    events = synthetic.generate(synthetic.requests(300, seed=5), {"old": Behaviour()})
    synthetic.insert(warehouse, events + events[:50])  # with duplicates
    assert [m.version for m in migrate(warehouse)][:2] == [4, 5]
    assert _by_name(_report(warehouse))["old"].comparisons == 300
    synthetic.insert(warehouse, events[:10])  # re-delivered after the upgrade
    assert _by_name(_report(warehouse))["old"].comparisons == 300
    warehouse.command(f"DROP DATABASE {db}")


def test_migrate_brings_retention_in_line_with_config(chdb_url: str) -> None:
    warehouse = connect(chdb_url, f"t_ttl_{uuid.uuid4().hex[:10]}")
    migrate(warehouse, retention_days=90)

    def ttls() -> dict[str, str]:
        rows = warehouse.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
            "AND engine_full LIKE '%TTL%'",
            {"db": warehouse.database},
        ).rows
        return {str(name): str(engine) for name, engine in rows}

    assert all("toIntervalDay(90)" in e for e in ttls().values())
    assert {"comparisons", "comparisons_minute", "comparison_keys"} <= set(ttls())
    assert migrate(warehouse, retention_days=30) == []
    assert all("toIntervalDay(30)" in e for e in ttls().values())
    from shadowstream.sinks.clickhouse.migrations import sync_retention

    assert sync_retention(warehouse, 30) == []  # idempotent
    warehouse.command(f"DROP DATABASE {warehouse.database}")


def test_hour_and_minute_tiers_add_up_to_the_exact_numbers(planted: Warehouse) -> None:
    """Windows with partial hours at both ends read both tiers; counts stay exact."""
    start = (
        planted.query(f"SELECT min(request_time) FROM {planted.database}.comparisons")
        .scalar()
        .replace(tzinfo=dt.UTC)
    )
    for since_min, until_min in [(7, 97), (0, 60), (13, 14), (59, 181), (-30, 30)]:
        window = TimeRange(
            start + dt.timedelta(minutes=since_min), start + dt.timedelta(minutes=until_min)
        )
        rollup = _by_name(build_report(Scope(planted, window), ReportOptions()))
        exact = _by_name(build_report(Scope(planted, window, exact=True), ReportOptions()))
        assert rollup.keys() == exact.keys()
        for name, row in rollup.items():
            other = exact[name]
            assert row.comparisons == other.comparisons, (window, name)
            assert row.divergence == other.divergence
            assert row.failure_increase == other.failure_increase
            a, b = row.champion.latency_p95_ms, other.champion.latency_p95_ms
            assert a is not None and b is not None and abs(a - b) / b < 0.05


def test_report_through_the_owner_endpoint_is_identical(planted: Warehouse) -> None:
    """`shadow report` in a second terminal goes through the pipeline's owner
    endpoint (JSON over loopback HTTP): datetimes, maps, arrays and NaN survive."""
    import orjson

    from shadowstream.warehouse.client import QueryResult
    from shadowstream.warehouse.owner import _jsonable, _revive, handle_sql

    class Routed:
        url, database = planted.url, planted.database

        def query(self, sql: str, parameters: Any = None) -> QueryResult:
            body = orjson.dumps(
                {"kind": "query", "sql": sql, "parameters": dict(parameters or {})},
                default=_jsonable,
            )
            status, payload = handle_sql(planted, "token", body, "Bearer token")
            data = orjson.loads(payload)
            assert status == 200, data
            rows = [tuple(_revive(v) for v in row) for row in data["rows"]]
            return QueryResult(tuple(data["columns"]), rows)

    window = TimeRange(since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1, minutes=30))
    options = ReportOptions(charts=True)
    routed = build_report(Scope(Routed(), window), options)  # type: ignore[arg-type]
    direct = build_report(Scope(planted, window), options)
    # ClickHouse sums floats in whatever order its threads finish: the last bits of a
    # mean may differ between two runs of the same query, routed or not
    for field in ("challengers", "slices", "examples", "series", "latency"):
        assert same(getattr(routed, field), getattr(direct, field)), field


def same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative (NaN equals NaN), through dataclasses and containers."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and same(dataclasses.astuple(a), dataclasses.astuple(b))
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
