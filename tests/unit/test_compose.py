"""docker-compose.yml (no Docker engine here): every service's command is a real `shadow` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from shadowstream.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, object]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def agent_services() -> list[tuple[str, list[str]]]:
    services = compose()["services"]
    assert isinstance(services, dict)
    out = []
    for name, spec in services.items():
        if spec.get("build") == ".":  # the image with the `shadow` entry point
            out.append((name, [str(part) for part in spec["command"]]))
    return out


def test_compose_has_the_production_shape() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "KRaft" in (ROOT / "docker-compose.yml").read_text()
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    commands = {name: " ".join(cmd) for name, cmd in agent_services()}
    assert any(c.startswith("worker router") for c in commands.values())
    assert any(c.startswith("worker challenger") for c in commands.values())
    assert any(c.startswith("worker sink") for c in commands.values())
    assert any(c.startswith("traffic") for c in commands.values())


@pytest.mark.parametrize(("service", "command"), agent_services())
def test_every_service_runs_a_real_shadow_command(service: str, command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, f"{service}: shadow {' '.join(command)}: {result.output}"
    assert "Usage: " in result.output


def test_example_config_is_valid() -> None:
    from shadowstream.core.config import load_settings

    settings = load_settings(ROOT / "examples" / "shadow.toml")
    assert {c.name for c in settings.challengers} == {"fast", "control"}


# -- the deployment's details (issue 16, section 3 and 4) ----------------------------------------
def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def long_running_agents() -> dict[str, dict[str, Any]]:
    """Agent services that stay up (not the one-shot migrate/topics, not opt-in profiles)."""
    return {
        name: spec
        for name, spec in services().items()
        if spec.get("build") == "."
        and spec.get("restart") != "no"
        and not spec.get("profiles")
        and str(spec["command"][0]) == "worker"
    }


def test_kafka_keeps_its_data_in_the_volume_and_has_an_external_listener() -> None:
    kafka = services()["kafka"]
    env = kafka["environment"]
    (mount,) = [v for v in kafka["volumes"] if v.startswith("kafka-data:")]
    assert env["KAFKA_LOG_DIRS"] == mount.split(":", 1)[1]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    external = next(name for name in advertised if name not in ("PLAINTEXT", "CONTROLLER"))
    port = listeners[external].rsplit(":", 1)[1]
    assert advertised[external].rsplit(":", 1)[1] == port
    assert external in protocols
    assert f"{port}:{port}" in kafka["ports"]  # published on the host
    assert advertised["PLAINTEXT"] == "kafka:9092"  # agents inside the network


def test_stateful_services_and_agents_restart_and_agents_have_healthchecks() -> None:
    for name in ("kafka", "clickhouse", "prometheus", "grafana"):
        assert services()[name].get("restart") == "unless-stopped", name
    agents = long_running_agents()
    assert {"router", "sink"} <= set(agents)
    for name, spec in agents.items():
        assert spec.get("restart") == "unless-stopped", name
        check = " ".join(spec["healthcheck"]["test"])
        port = spec["environment"]["SHADOW_WEB_PORT"]
        assert f"127.0.0.1:{port}/readyz" in check, name
        assert spec["environment"]["SHADOW_WEB_HOST"] == "0.0.0.0", name  # scrapable


def test_synthetic_traffic_runs_only_behind_a_profile() -> None:
    assert services()["traffic"]["profiles"] == ["demo"]


def test_prometheus_scrapes_every_agent_service_and_grafana_is_provisioned() -> None:
    prometheus = services()["prometheus"]
    mounted = {v.split(":")[0]: v.split(":")[1] for v in prometheus["volumes"]}
    config_dir = ROOT / mounted["./deploy/prometheus"].replace(
        "/etc/prometheus", "deploy/prometheus"
    )
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "shadowstream"]
    (dns,) = job["dns_sd_configs"]
    agents = long_running_agents()
    assert set(dns["names"]) == set(agents)
    assert {str(spec["environment"]["SHADOW_WEB_PORT"]) for spec in agents.values()} == {
        str(dns["port"])
    }
    grafana = services()["grafana"]
    for volume in grafana["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).is_dir(), source
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/shadowstream.yml").read_text()
    )
    uids = {ds["uid"]: ds["type"] for ds in provisioned["datasources"]}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/shadowstream.json").read_text())
    used = {
        (t["datasource"]["uid"], t["datasource"]["type"])
        for panel in dashboard["panels"]
        for t in panel.get("targets", [])
    }
    assert used == set(uids.items())  # every panel queries a provisioned source; both are used
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
