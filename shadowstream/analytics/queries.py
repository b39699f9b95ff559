"""Report SQL: loaded from ``shadowstream/analytics/sql/*.sql``, run with bound parameters only.

Placeholders filled in here are trusted text, never user input:

* ``{db}``: the database name, validated as an identifier;
* ``{minute_source}``, ``{slices_source}``, ``{tiered_source}``: the rollup
  tables (the tiered source reads whole hours from ``comparisons_hour`` and the
  partial hours from ``comparisons_minute``), or - with ``exact=True`` -
  subqueries that recompute the same columns from ``comparisons FINAL``
  (``*_exact.sql``); a query with an ``<name>_exact.sql`` of its own is
  replaced by it as a whole in exact mode.

Everything a user gives (time range, experiment, challenger names, limits) is
passed as a ``{name:Type}`` query parameter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from shadowstream.core.errors import ConfigError, WarehouseError
from shadowstream.warehouse.client import QueryResult, Warehouse

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FAR_FUTURE = dt.datetime(2299, 12, 31, tzinfo=dt.UTC)

# placeholder -> (rollup: table name or @sql file, exact: sql file)
SOURCES = {
    "minute_source": ("{db}.comparisons_minute", "minute_exact"),
    "tiered_source": ("@tiered_rollup", "minute_exact"),
    "slices_source": ("{db}.comparison_slices_minute", "slices_exact"),
    # comparator measures (0040) and resources per request (0041)
    "measures_source": ("{db}.measures_minute", "measures_exact"),
    "measure_slices_source": ("{db}.measure_slices_minute", "measure_slices_exact"),
    "resources_source": ("{db}.resources_minute", "resources_exact"),
    "resource_slices_source": ("{db}.resource_slices_minute", "resource_slices_exact"),
}
EXACT_QUERIES = {"examples": "examples_exact"}


def check_identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise ConfigError(f"invalid ClickHouse database name {name!r}")
    return name


ROLLUP_TABLES = (
    "comparisons_minute",
    "comparisons_hour",
    "comparison_slices_minute",
    "comparison_examples",
    "measures_minute",
    "resources_minute",
    "comparison_provisional",
)


def require_schema(warehouse: Warehouse) -> None:
    """One clear error when the tables the reports read do not exist yet."""
    found = warehouse.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}",
        {"db": warehouse.database, "names": list(ROLLUP_TABLES)},
    ).scalar()
    if int(found or 0) < len(ROLLUP_TABLES):
        raise WarehouseError(
            f"database {warehouse.database!r} at {warehouse.url} has no report tables yet: "
            "run `shadow db migrate` (the sink also migrates when it starts)"
        )


@cache
def _read(name: str) -> str:
    text = (
        resources.files("shadowstream.analytics").joinpath("sql", f"{name}.sql").read_text("utf-8")
    )
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def load_sql(name: str, database: str, exact: bool = False) -> str:
    """The query ``shadowstream/analytics/sql/<name>.sql`` for ``database``, sources filled in."""
    text = _read(EXACT_QUERIES[name] if exact and name in EXACT_QUERIES else name)
    for placeholder, (rollup, exact_file) in SOURCES.items():
        token = "{" + placeholder + "}"
        if token in text:
            if exact:
                source = _read(exact_file)
            else:
                source = _read(rollup[1:]) if rollup.startswith("@") else rollup
            text = text.replace(token, source)
    return text.replace("{db}", check_identifier(database))


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """ClickHouse parameters: naive UTC (clickhouse-connect formats them as is)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def as_utc(value: Any) -> dt.datetime | None:
    """A datetime from ClickHouse (naive = UTC) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: dt.datetime) -> dt.datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + dt.timedelta(hours=1)


@dataclass(frozen=True)
class TimeRange:
    """``[since, until)``; rollups are per minute, so both ends round down to a minute."""

    since: dt.datetime = EPOCH
    until: dt.datetime = FAR_FUTURE

    def snapped(self) -> TimeRange:
        since = as_utc(self.since) or EPOCH
        until = as_utc(self.until) or FAR_FUTURE
        return TimeRange(floor_minute(since), floor_minute(until))

    def hours(self) -> tuple[dt.datetime, dt.datetime]:
        """The whole hours inside the range, ``[first, last)``; empty (equal) if none."""
        first, last = ceil_hour(self.since), floor_hour(self.until)
        return (first, last) if first < last else (self.since, self.since)

    def parameters(self) -> dict[str, Any]:
        hour_since, hour_until = self.hours()
        return {
            "since": utc_naive(self.since),
            "until": utc_naive(self.until),
            "hour_since": utc_naive(hour_since),
            "hour_until": utc_naive(hour_until),
        }

    @property
    def bounded(self) -> bool:
        return self.since > EPOCH or self.until < FAR_FUTURE


@dataclass(frozen=True)
class Scope:
    """What a report or gate looks at: database, time range, experiment, exactness."""

    warehouse: Warehouse
    window: TimeRange
    experiment: str = ""
    exact: bool = False

    def parameters(self, **extra: Any) -> dict[str, Any]:
        return {**self.window.parameters(), "experiment": self.experiment, **extra}

    def run(self, name: str, **extra: Any) -> QueryResult:
        sql = load_sql(name, self.warehouse.database, self.exact)
        return self.warehouse.query(sql, self.parameters(**extra))
