"""Configuration of resource limits, pricing and the gate's resource criteria; --limit."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shadowstream.cli.main import cli
from shadowstream.core.config import load_settings
from shadowstream.core.errors import ConfigError


def test_defaults_are_off_and_blocks_validate() -> None:
    settings = load_settings(None)
    assert settings.resources.limits == {} and settings.resources.batch_price_factor == 0.5
    assert not settings.gate.resources.enabled
    configured = load_settings(
        None,
        resources={"limits": {"tokens_out": 800}},
        gate={"resources": {"over_limit": {"tokens_out": {"limit": 800, "max_share": 0.05}}}},
    )
    assert configured.gate.resources.enabled
    assert configured.gate.resources.over_limit["tokens_out"].max_share == 0.05
    for bad in (
        {"resources": {"limits": {"latency": 3}}},
        {"resources": {"batch_price_factor": 0}},
        {"gate": {"resources": {"over_limit": {"cost": {"limit": 1, "max_share": 2}}}}},
        {"gate": {"resources": {"max_monthly_cost": -1}}},
    ):
        with pytest.raises(ConfigError):
            load_settings(None, **bad)


def test_env_vars_reach_the_nested_gate_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHADOW_GATE__RESOURCES__MAX_MONTHLY_COST", "5000")
    assert load_settings(None).gate.resources.max_monthly_cost == 5000


@pytest.mark.parametrize("limit", ["tokens_out", "tokens_out=abc", "latency=3", "=5"])
def test_a_bad_limit_is_a_one_line_usage_error(limit: str, tmp_path: object) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--clickhouse-url", "chdb:///nonexistent/x", "--limit", limit]
    )
    assert result.exit_code == 3  # usage error (2 is the gate's "not enough data")
    assert "--limit" in result.output and "Traceback" not in result.output
