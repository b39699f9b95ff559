"""Verdicts with the default config on planted data in chDB (no broker needed).

Two experiments in one database, each with its own A/A control whose latency
carries the shadow path's overhead (+6% over the champion's self-reported
latency, as measured here):

* ``live`` - a quiet champion (the control disagrees with it 1% of the time):
  ``twin`` (same as the control) must PROMOTE; ``de_bug`` is wrong on 36% of
  German requests, 90.1% agreement overall, so the overall criterion cannot
  tell, but the slice does: FAIL; ``slower`` (1.5x) FAILS on latency;
  ``rare`` (3% divergence, 2 points above the floor) PROMOTES.
* ``noisy`` - a champion that disagrees with itself 12% of the time (sampling
  temperature): its ``twin`` at 12% must PROMOTE, judged beyond the floor.

A second database has two endpoint groups, each with its own control: every
challenger is judged against its own endpoint's control, in the gate, the
report and the CLI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from shadowstream.analytics.gate import run_gate
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.cli.main import cli
from shadowstream.core.config import GateSpec
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.warehouse.client import Warehouse, connect
from tests.support import synthetic
from tests.support.synthetic import Behaviour, Request

N = 3000
OVERHEAD = 1.06  # the shadow path's own latency overhead over the champion's report


def german(rate: float, elsewhere: float) -> Any:
    def divergence(request: Request) -> float:
        return rate if request.attributes["language"] == "de" else elsewhere

    return divergence


def _database(chdb_url: str, prefix: str) -> Warehouse:
    warehouse = connect(chdb_url, f"{prefix}_{uuid.uuid4().hex[:10]}")
    migrate(warehouse)
    return warehouse


@pytest.fixture(scope="module")
def defaults(chdb_url: str) -> Iterator[Warehouse]:
    warehouse = _database(chdb_url, "t_dec")
    live = {
        "control": Behaviour(divergence=0.01, latency_factor=OVERHEAD),
        "twin": Behaviour(divergence=0.01, latency_factor=OVERHEAD),
        "de_bug": Behaviour(divergence_by=german(0.36, 0.01), latency_factor=OVERHEAD),
        "slower": Behaviour(divergence=0.01, latency_factor=1.5),
        "rare": Behaviour(divergence=0.03, latency_factor=OVERHEAD),
    }
    noisy = {
        "control": Behaviour(divergence=0.12, latency_factor=OVERHEAD),
        "twin": Behaviour(divergence=0.12, latency_factor=OVERHEAD),
    }
    events = synthetic.generate(synthetic.requests(N, seed=21), live, seed=3)
    events += synthetic.generate(
        synthetic.requests(N, seed=22), noisy, seed=4, experiment_id="noisy"
    )
    synthetic.insert(warehouse, events)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def verdicts(warehouse: Warehouse, spec: GateSpec | None = None) -> dict[tuple[str, str], Any]:
    results = run_gate(Scope(warehouse, TimeRange()), spec or GateSpec(), "control")
    return {(r.experiment_id, r.challenger): r for r in results}


def test_the_default_gate_gives_the_verdict_the_report_supports(defaults: Warehouse) -> None:
    results = verdicts(defaults)

    def statuses(key: tuple[str, str]) -> dict[str, str]:
        return {c.name: c.status for c in results[key].criteria}

    # identical outputs, latency judged against the control (same shadow path)
    twin = results[("live", "twin")]
    assert twin.verdict == "promote", twin.criteria
    latency = {c.name: c for c in twin.criteria}["latency p95 regression"]
    assert "vs control" in latency.note
    # 90.1% overall agreement (91% beyond the floor) does not fail the 90% bar;
    # German requests do
    de_bug = statuses(("live", "de_bug"))
    assert de_bug["agreement"] in ("pass", "undecided")
    assert de_bug["slice agreement"] == "fail"
    assert results[("live", "de_bug")].verdict == "fail"
    failed = {c.name: c for c in results[("live", "de_bug")].criteria}["slice agreement"]
    assert "language=de" in failed.note
    assert statuses(("live", "slower"))["latency p95 regression"] == "fail"
    assert results[("live", "rare")].verdict == "promote"
    # a champion that disagrees with itself 12% of the time: its twin is as good
    assert results[("noisy", "twin")].verdict == "promote", results[("noisy", "twin")].criteria
    assert {k[1] for k in results} == {"twin", "de_bug", "slower", "rare"}  # controls: not gated
    # the same data, judged the old way (absolute agreement, champion latency): wrong
    old = verdicts(defaults, GateSpec(latency_baseline="champion", agreement_baseline="absolute"))
    assert old[("noisy", "twin")].verdict != "promote"
    # ... and what the report says agrees with the defaults
    report = build_report(Scope(defaults, TimeRange()), ReportOptions())
    rows = {(r.experiment_id, r.challenger): r for r in report.challengers}
    floor = rows[("noisy", "twin")].floor
    assert floor is not None and floor.low is not None and floor.low < 0.01  # not above it
    flagged = [s for s in report.slices if s.challenger == "de_bug" and s.significant]
    assert [(s.attribute, s.value) for s in flagged] == [("language", "de")]
    assert rows[("live", "twin")].p95_vs_control_pct is not None
    assert abs(rows[("live", "twin")].p95_vs_control_pct) < 5  # type: ignore[arg-type]


# -- several endpoint groups, each with its own control ---------------------------------------
ENDPOINT_GROUPS = [
    {"name": "ctl-b", "callable": "m:f", "control": True, "endpoints": ["/b"]},
    {"name": "ctl-a", "callable": "m:f", "control": True, "endpoints": ["/a"]},
    {"name": "twin-a", "callable": "m:f", "endpoints": ["/a"]},
    {"name": "twin-b", "callable": "m:f", "endpoints": ["/b"]},
    {"name": "worse-b", "callable": "m:f", "endpoints": ["/b"]},
]


@pytest.fixture(scope="module")
def endpoint_groups(chdb_url: str) -> Iterator[Warehouse]:
    """/a: a free-text-ish endpoint whose champion disagrees with itself 12% of the time;
    /b: a deterministic one (1%). Configured with ctl-b first."""
    warehouse = _database(chdb_url, "t_eg")
    a = {
        "ctl-a": Behaviour(divergence=0.12, latency_factor=OVERHEAD),
        "twin-a": Behaviour(divergence=0.12, latency_factor=OVERHEAD),
    }
    b = {
        "ctl-b": Behaviour(divergence=0.01, latency_factor=OVERHEAD),
        "twin-b": Behaviour(divergence=0.01, latency_factor=OVERHEAD),
        "worse-b": Behaviour(divergence=0.13, latency_factor=OVERHEAD),
    }
    events = synthetic.generate(synthetic.requests(N, seed=31), a, seed=5, endpoint="/a")
    events += synthetic.generate(synthetic.requests(N, seed=32), b, seed=6, endpoint="/b")
    synthetic.insert(warehouse, events)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def test_each_challenger_is_judged_against_its_own_endpoints_control(
    endpoint_groups: Warehouse, chdb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = Scope(endpoint_groups, TimeRange())
    results = {r.challenger: r for r in run_gate(scope, GateSpec(), ["ctl-b", "ctl-a"])}
    assert {name: r.control for name, r in results.items()} == {
        "twin-a": "ctl-a",
        "twin-b": "ctl-b",
        "worse-b": "ctl-b",
    }
    assert results["twin-a"].verdict == "promote", results["twin-a"].criteria
    assert results["twin-b"].verdict == "promote", results["twin-b"].criteria
    # 13% where its own control disagrees 1%: 12 points above its floor
    assert results["worse-b"].verdict == "fail"
    # against the first control for everyone, twin-a would look 11 points worse
    (misjudged,) = run_gate(scope, GateSpec(), ["ctl-b"], "twin-a")
    assert misjudged.verdict != "promote"
    options = ReportOptions(controls=("ctl-b", "ctl-a"))
    rows = {r.challenger: r for r in build_report(scope, options).challengers}
    assert rows["twin-a"].floor is not None and rows["twin-a"].floor.control == "ctl-a"
    assert rows["worse-b"].floor is not None and rows["worse-b"].floor.control == "ctl-b"
    assert rows["ctl-a"].is_control and rows["ctl-a"].floor is None
    # the CLI reads the controls from the config, in its order
    monkeypatch.setenv("SHADOW_CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("SHADOW_CLICKHOUSE_DATABASE", endpoint_groups.database)
    monkeypatch.setenv("SHADOW_CHALLENGERS", json.dumps(ENDPOINT_GROUPS))
    runner = CliRunner()
    gate = runner.invoke(cli, ["gate", "--format", "json"], catch_exceptions=False)
    data = json.loads(gate.output)
    assert gate.exit_code == 1  # worse-b
    assert {r["challenger"]: (r["control"], r["verdict"]) for r in data["results"]} == {
        "twin-a": ("ctl-a", "promote"),
        "twin-b": ("ctl-b", "promote"),
        "worse-b": ("ctl-b", "fail"),
    }
    both = runner.invoke(
        cli, ["gate", "--challenger", "twin-a", "--challenger", "twin-b"], catch_exceptions=False
    )
    assert both.exit_code == 0, both.output
    table = runner.invoke(cli, ["report"], catch_exceptions=False).output
    assert "(ctl-a)" in table and "(ctl-b)" in table
