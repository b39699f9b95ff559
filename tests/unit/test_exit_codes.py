"""Verdicts and errors never share an exit code."""

from __future__ import annotations

from click.testing import CliRunner

from shadowstream.analytics.gate import EXIT_CODES
from shadowstream.cli import exit_codes
from shadowstream.cli.main import cli, error_code
from shadowstream.core.errors import (
    BrokerError,
    ConfigError,
    GateError,
    NotFoundError,
    WarehouseError,
    WarehouseUnavailableError,
)


def test_verdict_codes_are_the_gates() -> None:
    assert EXIT_CODES == {
        "promote": exit_codes.PROMOTE,
        "fail": exit_codes.FAIL,
        "not enough data": exit_codes.NOT_ENOUGH_DATA,
    }
    errors = {exit_codes.USAGE, exit_codes.STORE_UNAVAILABLE, exit_codes.ERROR}
    assert len(errors) == 3 and not errors & set(EXIT_CODES.values())


def test_each_error_maps_to_its_own_code() -> None:
    assert error_code(ConfigError("x")) == exit_codes.USAGE
    assert error_code(NotFoundError("x")) == exit_codes.USAGE
    assert error_code(WarehouseUnavailableError("x")) == exit_codes.STORE_UNAVAILABLE
    assert error_code(WarehouseError("x")) == exit_codes.ERROR
    assert error_code(BrokerError("x")) == exit_codes.ERROR
    assert error_code(GateError("x")) == exit_codes.ERROR


def test_click_usage_errors_are_3_not_2() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["gate", "--format", "yaml"]).exit_code == exit_codes.USAGE
    assert runner.invoke(cli, ["no-such-command"]).exit_code == exit_codes.USAGE
    assert runner.invoke(cli, ["watch", "--checks", "0"]).exit_code == exit_codes.USAGE
    helped = runner.invoke(cli, ["--help"])
    assert helped.exit_code == 0 and "Exit codes: 0 promote" in helped.output
    assert "Exit codes" in runner.invoke(cli, ["watch", "--help"]).output
