"""Monitoring for real: a real Prometheus (Debian package ``prometheus``; ``./dev test``
installs it) scrapes running agent processes; promtool checks the shipped
configuration and unit-tests the alert rules; the dashboard's ClickHouse
queries run on real rollups in chDB.

Every process here is started by the test and stopped by its PID.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shadowstream.pipeline.app import create_topics
from shadowstream.pipeline.embedded import free_port
from shadowstream.pipeline.processes import AgentProcess
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.warehouse.client import connect
from tests.support import synthetic
from tests.support.harness import emit_traffic

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "shadowstream.json"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed")


def dashboard_targets(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == kind:
                found.append((panel["title"], target))
    assert found, kind
    return found


# -- promtool ------------------------------------------------------------------------------------
@needs_promtool
def test_promtool_accepts_the_config_and_the_alert_rules_fire_as_specified() -> None:
    assert PROMTOOL is not None
    folder = DEPLOY / "prometheus"
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(
            [PROMTOOL, *args], cwd=folder, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
        assert "SUCCESS" in done.stdout + done.stderr


# -- the dashboard's ClickHouse panels -------------------------------------------------------------
def expand_grafana_sql(sql: str, database: str, since: dt.datetime, until: dt.datetime) -> str:
    """What the ClickHouse data source sends: variables, then its macros, expanded."""
    frm, to = int(since.timestamp()), int(until.timestamp())
    sql = sql.replace("${database}", database).replace("${experiment}", "live")
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)", rf"\1 >= toDateTime({frm}) AND \1 <= toDateTime({to})", sql
    )
    sql = re.sub(
        r"\$__timeInterval\((\w+)\)",
        r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)",
        sql,
    )
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return sql


def test_the_dashboards_clickhouse_queries_run_on_real_rollups(chdb_url: str) -> None:
    warehouse = connect(chdb_url, f"t_dash_{uuid.uuid4().hex[:10]}")
    try:
        migrate(warehouse)
        synthetic.insert_planted(warehouse, n=400)
        now = dt.datetime.now(dt.UTC)
        names = set(synthetic.planted_behaviours()) | {"newbie"}
        for title, target in dashboard_targets("grafana-clickhouse-datasource"):
            sql = expand_grafana_sql(
                target["rawSql"], warehouse.database, now - dt.timedelta(hours=3), now
            )
            result = warehouse.query(sql)
            assert result.rows, title
            columns = result.column_names
            if target["queryType"] == "timeSeries":
                assert columns[0] == "time", title
            if "challenger" in columns:
                seen = {row[columns.index("challenger")] for row in result.rows}
                assert seen == names, title
            if title == "Challengers over the selected range":
                rows = {r["challenger"]: r for r in result.dicts()}
                # the planted German bug and flaky errors show, against the A/A control
                assert rows["de_bug"]["divergence"] > rows["control"]["divergence"] + 0.05
                assert rows["flaky"]["failure_rate"] > 0.03 > rows["control"]["failure_rate"]
                assert rows["slowpoke"]["challenger_p95_ms"] > rows["control"]["challenger_p95_ms"]
    finally:
        warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


# -- a real Prometheus against running agents -------------------------------------------------------
class Prometheus:
    """A Prometheus server we started, on a free loopback port."""

    def __init__(self, folder: Path, targets: dict[str, int]) -> None:
        assert PROMETHEUS is not None
        self.port = free_port()
        shutil.copy(DEPLOY / "prometheus" / "alerts.yml", folder / "alerts.yml")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [
                {
                    "job_name": "shadowstream",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
                        for name, port in targets.items()
                    ],
                }
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = folder / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def value(self, expr: str) -> float:
        result = self.api("query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, KeyError, IndexError, AssertionError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} ({last})")


@pytest.fixture
def agents(make_settings: Any, tmp_path: Path) -> Iterator[dict[str, AgentProcess]]:
    settings = make_settings(
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",  # the sink process owns its own engine
        challengers=[{"name": "same", "callable": "tests.support.models:same"}],
    )
    create_topics(settings)
    procs = {
        "router": AgentProcess(settings, ["worker", "router"], tmp_path, "router"),
        "challenger-same": AgentProcess(
            settings, ["worker", "challenger", "--name", "same"], tmp_path, "worker"
        ),
        "sink": AgentProcess(settings, ["worker", "sink"], tmp_path, "sink"),
    }
    try:
        for proc in procs.values():
            proc.start()
        for proc in procs.values():
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


COUNTERS = {
    "requests consumed by the router": "sum(shadowstream_router_consumed_messages_total)",
    "challenger answers": 'sum(shadowstream_challenger_responses_total{status="ok"})',
    "comparisons emitted": "sum(shadowstream_router_comparisons_total)",
    "comparisons stored": 'sum(shadowstream_sink_inserted_rows_total{table="comparisons"})',
    "insert histogram": 'sum(shadowstream_sink_insert_duration_seconds_count{table="comparisons"})',
}


@needs_prometheus
def test_prometheus_scrapes_every_agent_and_sees_the_pipeline_work(
    agents: dict[str, AgentProcess], tmp_path: Path
) -> None:
    settings = agents["router"].settings
    prometheus = Prometheus(tmp_path, {name: proc.web_port for name, proc in agents.items()})
    try:
        wait_until(lambda: prometheus.api("targets")["activeTargets"], 60, "Prometheus to start")

        def all_up() -> bool:
            targets = prometheus.api("targets")["activeTargets"]
            return len(targets) == 3 and all(t["health"] == "up" for t in targets)

        wait_until(all_up, 60, "every agent target up")
        assert prometheus.value('count(up{job="shadowstream"} == 1)') == 3

        emit_traffic(settings, 200)
        wait_until(
            lambda: prometheus.value(COUNTERS["comparisons stored"]) >= 200, 90, "200 stored"
        )
        before = {name: prometheus.value(expr) for name, expr in COUNTERS.items()}
        emit_traffic(settings, 200, prefix="more")
        for name, expr in COUNTERS.items():
            wait_until(
                lambda e=expr, n=name: prometheus.value(e) > before[n],  # type: ignore[misc]
                90,
                f"{name} to increase",
            )
        wait_until(
            lambda: prometheus.value(COUNTERS["comparisons stored"]) >= 400, 90, "400 stored"
        )
        # librdkafka's view: every agent reaches the broker, lag is reported per group
        assert prometheus.value("min(shadowstream_kafka_brokers_up)") >= 1
        expected = {f"{settings.topic_prefix}.{g}" for g in ("router", "challenger.same", "sink")}

        def lag_groups() -> set[str]:
            query = "count by (group) (shadowstream_kafka_consumer_lag_messages)"
            return {g["metric"]["group"] for g in prometheus.api("query", query=query)["result"]}

        wait_until(lambda: lag_groups() == expected, 30, "consumer lag of every group")
        # every PromQL expression of the dashboard is valid against the real data
        for title, target in dashboard_targets("prometheus"):
            expr = target["expr"].replace("$__rate_interval", "30s").replace("$__range", "5m")
            assert prometheus.api("query", query=expr)["resultType"] == "vector", title
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        shipped = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
        assert len(rules) == sum(len(g["rules"]) for g in shipped["groups"])
        wait_until(
            lambda: all(
                r.get("health") == "ok" for r in prometheus.api("rules")["groups"][0]["rules"]
            ),
            30,
            "every alert rule evaluated",
        )
        # the compose healthcheck command works against a real agent
        check = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-agent"]["healthcheck"]
        command = [
            str(part).replace("6066", str(agents["sink"].web_port)) for part in check["test"][1:]
        ]
        command[0] = sys.executable
        assert subprocess.run(command, timeout=30).returncode == 0
        # a killed agent is a down target
        agents["challenger-same"].kill9()
        wait_until(
            lambda: prometheus.value('up{job="shadowstream", service="challenger-same"}') == 0,
            30,
            "the killed worker's target down",
        )
    finally:
        prometheus.stop()
