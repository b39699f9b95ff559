"""First-day behaviour of the `shadow` command: config discovery, connection options, ports."""

from __future__ import annotations

import socket
from pathlib import Path

import click
import pytest

from shadowstream.cli.main import cli
from shadowstream.core.config import find_config_file, load_settings
from shadowstream.pipeline.embedded import port_taken

# commands that connect to nothing: the embedded demo and broker start their own
SELF_CONTAINED = {"demo", "broker"}


def leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.update(leaf_commands(command, f"{path} "))
        else:
            found[path] = command
    return found


def test_every_command_that_connects_takes_the_same_connection_options() -> None:
    commands = leaf_commands(cli)
    assert {"run", "worker sink", "db migrate", "report", "batch run"} <= set(commands)
    for path, command in commands.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if path in SELF_CONTAINED:
            continue
        assert {"--broker-url", "--clickhouse-url"} <= options, path


def test_config_file_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config_file() is None
    (tmp_path / "shadow.toml").write_text("partitions = 3\n")
    assert find_config_file() == Path("shadow.toml")
    (tmp_path / "other.toml").write_text("partitions = 5\n")
    monkeypatch.setenv("SHADOW_CONFIG", "other.toml")
    assert find_config_file() == Path("other.toml")
    assert find_config_file("explicit.toml") == Path("explicit.toml")
    monkeypatch.delenv("SHADOW_CONFIG")
    assert load_settings(discover=True).partitions == 3
    # the library (tests, the demo) never picks up a stray ./shadow.toml by itself
    assert load_settings().partitions == 8


def test_a_port_in_use_is_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_taken("127.0.0.1", port)
    assert not port_taken("127.0.0.1", port)
