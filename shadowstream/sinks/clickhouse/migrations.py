"""Versioned DDL: ``shadowstream/sinks/clickhouse/sql/NNNN_name.sql`` applied in order, once each.

Applied versions are recorded in ``<db>.schema_migrations``; every statement is
written to be idempotent too (``IF NOT EXISTS``), so re-running is harmless
even if a previous run stopped half way. The same files run on chDB and on a
ClickHouse server. ``{db}`` and ``{retention_days}`` are the only placeholders.

Retention: ``{retention_days}`` is baked into a table's TTL when its migration
runs; every :func:`migrate` afterwards brings the TTL of each table
(``TTL <expr> + INTERVAL N DAY``) in line with the configured
``retention_days`` (``ALTER TABLE ... MODIFY TTL``, only when N differs, so a
re-run changes nothing). ClickHouse then re-evaluates the TTL of existing
parts in the background (a mutation): lowering the retention deletes old data.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from shadowstream.core.errors import WarehouseError
from shadowstream.warehouse.client import Warehouse
from shadowstream.warehouse.commands import owner_procedure

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# the whole TTL clause of a table: one expression plus a number of days
_TTL = re.compile(
    r"\sTTL\s+(?P<expr>.+?)\s+\+\s+toIntervalDay\((?P<days>\d+)\)(?:\s+SETTINGS\s|\s*$)"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str, retention_days: int) -> list[str]:
        text = self.sql.replace("{db}", database).replace("{retention_days}", str(retention_days))
        lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
        return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def available_migrations() -> list[Migration]:
    folder = resources.files("shadowstream.sinks.clickhouse").joinpath("sql")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise WarehouseError(f"duplicate migration versions: {versions}")
    return found


def applied_versions(warehouse: Warehouse) -> set[int]:
    exists = warehouse.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} "
        "AND name = 'schema_migrations'",
        {"db": warehouse.database},
    ).scalar()
    if not exists:
        return set()
    rows = warehouse.query(f"SELECT version FROM {warehouse.database}.schema_migrations").rows
    return {int(r[0]) for r in rows}


def migrate(warehouse: Warehouse, retention_days: int = 90) -> list[Migration]:
    """Apply every migration not applied yet; returns those applied now."""
    db = warehouse.database
    if not _IDENT.match(db):
        raise WarehouseError(f"invalid database name {db!r}")
    warehouse.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    warehouse.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = applied_versions(warehouse)
    applied = []
    for migration in available_migrations():
        if migration.version in done:
            continue
        for statement in migration.statements(db, retention_days):
            warehouse.command(statement)
        warehouse.command(
            f"INSERT INTO {db}.schema_migrations (version, name, checksum) "
            "VALUES ({v:UInt32}, {n:String}, {c:String})",
            {"v": migration.version, "n": migration.name, "c": migration.checksum},
        )
        applied.append(migration)
    sync_retention(warehouse, retention_days)
    return applied


def sync_retention(warehouse: Warehouse, retention_days: int) -> list[tuple[str, int]]:
    """Set every ``<expr> + INTERVAL N DAY`` table TTL to ``retention_days``.

    Returns (table, previous days) for each table changed; idempotent.
    """
    db = warehouse.database
    if not _IDENT.match(db):
        raise WarehouseError(f"invalid database name {db!r}")
    rows = warehouse.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
        "AND engine_full LIKE '%TTL%' ORDER BY name",
        {"db": db},
    ).rows
    changed = []
    for name, engine_full in rows:
        match = _TTL.search(str(engine_full))
        if not match or not _IDENT.match(str(name)):
            continue
        days = int(match.group("days"))
        if days == retention_days:
            continue
        warehouse.command(
            f"ALTER TABLE {db}.{name} MODIFY TTL {match.group('expr')} "
            f"+ INTERVAL {int(retention_days)} DAY"
        )
        log.info("retention of %s.%s changed from %d to %d days", db, name, days, retention_days)
        changed.append((str(name), days))
    return changed


@owner_procedure("migrate")
def migrate_in_owner(warehouse: Warehouse, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """``shadow db migrate`` while the pipeline owns the chDB directory: run in the owner."""
    days = int(parameters.get("retention_days", 90))
    changed = sync_retention(warehouse, days)
    applied = migrate(warehouse, days)
    return {
        "applied": [f"{m.version:04d}_{m.name}" for m in applied],
        "retention": [[table, previous] for table, previous in changed],
    }
