"""Connection options shared by every command that connects, and where it connects.

``--broker-url`` and ``--clickhouse-url`` are the same on every such command
(they override ``SHADOW_BROKER_URL`` / ``SHADOW_CLICKHOUSE_URL`` and the config
file). Only the commands that own the embedded store (``run``, ``worker sink``,
``demo``, ``db migrate``) may create a chDB directory; the others say that
there is no data there instead of creating an empty one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from shadowstream.core.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(fn: F) -> F:
    """Add ``--broker-url`` and ``--clickhouse-url`` (parameters ``broker_url``, ``clickhouse_url``)."""
    fn = click.option(
        "--clickhouse-url",
        default=None,
        metavar="URL",
        help="ClickHouse: http(s)://[user@]host:port or chdb://PATH "
        "(overrides SHADOW_CLICKHOUSE_URL and the config file).",
    )(fn)
    return click.option(
        "--broker-url",
        default=None,
        metavar="URL",
        help="Kafka: kafka://host:port[,host:port] "
        "(overrides SHADOW_BROKER_URL and the config file).",
    )(fn)


def open_settings_warehouse(settings: Any, *, create: bool = False, readonly: bool = False) -> Any:
    """ClickHouse for a command (via the running owner process for chDB if there is one).

    ``create``: the command owns the store and may create a chDB directory that
    does not exist yet; other commands get a one-line error instead.
    ``readonly``: for the commands that only read (report, gate, watch's queries,
    batch status, show): ClickHouse's ``readonly`` setting, writes refused.
    """
    from shadowstream.warehouse.client import chdb_path, open_warehouse

    path = chdb_path(settings.clickhouse_url)
    if path is not None and not create and not path.exists():
        raise ConfigError(
            f"no ClickHouse data at {path} (chDB, {settings.clickhouse_url}): nothing has "
            "been stored there yet; start the pipeline there first (`shadow run`, "
            "`shadow demo`) or point --clickhouse-url / SHADOW_CLICKHOUSE_URL at your store"
        )
    password = settings.clickhouse_password
    return open_warehouse(
        settings.clickhouse_url,
        settings.clickhouse_database,
        password.get_secret_value() if password else None,
        readonly=readonly,
    )
