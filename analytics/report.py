"""Report queries. SQL lives in ``analytics/sql/*.sql``; every filter is a bound parameter."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sinks.clickhouse.warehouse import Warehouse

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FAR_FUTURE = dt.datetime(2299, 12, 31, tzinfo=dt.UTC)


def load_sql(name: str, database: str) -> str:
    text = resources.files("analytics").joinpath("sql", f"{name}.sql").read_text("utf-8")
    return text.replace("{db}", database)


@dataclass(frozen=True)
class TimeRange:
    since: dt.datetime = EPOCH
    until: dt.datetime = FAR_FUTURE

    def parameters(self) -> dict[str, Any]:
        return {
            "since": self.since.astimezone(dt.UTC).replace(tzinfo=None),
            "until": self.until.astimezone(dt.UTC).replace(tzinfo=None),
        }


def summary(
    warehouse: Warehouse, window: TimeRange | None = None, experiment: str = ""
) -> list[dict[str, Any]]:
    """One row per (challenger, experiment): counts, divergence, latency, errors."""
    window = window or TimeRange()
    params = {**window.parameters(), "experiment": experiment}
    return warehouse.query(load_sql("summary", warehouse.database), params).dicts()
