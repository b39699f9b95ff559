"""``shadow db migrate``: create or upgrade the ClickHouse tables."""

from __future__ import annotations

from typing import Any

import click

from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.context import load


def register(cli: click.Group) -> None:
    cli.add_command(db)


@click.group()
def db() -> None:
    """ClickHouse schema."""


@db.command("migrate")
@connection_options
@click.pass_context
def db_migrate(ctx: click.Context, /, **connection: Any) -> None:
    """Create or upgrade the tables (idempotent; same SQL for chDB and a server)."""
    from shadowstream.cli.output import console
    from shadowstream.sinks.clickhouse.migrations import migrate, sync_retention
    from shadowstream.warehouse.owner import RemoteWarehouse

    settings = load(ctx, **connection)
    warehouse = open_settings_warehouse(settings, create=True)  # it sets the store up
    if isinstance(warehouse, RemoteWarehouse):
        # the running pipeline owns the chDB directory: it migrates, on request by name
        result = warehouse.call("migrate", {"retention_days": settings.retention_days})
        for table, days in result["retention"]:
            console.print(f"retention of {table}: {days} -> {settings.retention_days} days")
        for name in result["applied"]:
            console.print(f"applied {name}")
        if not result["applied"]:
            console.print(f"schema is up to date (retention {settings.retention_days} days)")
        return
    # existing tables first, so the TTL changes can be shown (migrate() aligns them too)
    for table, days in sync_retention(warehouse, settings.retention_days):
        console.print(f"retention of {table}: {days} -> {settings.retention_days} days")
    applied = migrate(warehouse, settings.retention_days)
    for m in applied:
        console.print(f"applied {m.version:04d}_{m.name}")
    if not applied:
        console.print(f"schema is up to date (retention {settings.retention_days} days)")
