"""docker-compose.yml (no Docker engine here): every service's command is a real `shadow` command."""

from __future__ import annotations

from pathlib import Path

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
        if "command" in spec:
            assert spec.get("build") == "." or "image" not in spec, name
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
