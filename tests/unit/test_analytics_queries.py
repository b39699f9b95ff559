"""Report SQL loading: identifiers validated, user input only as bound parameters."""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources

import pytest

from shadowstream.analytics.queries import EPOCH, FAR_FUTURE, TimeRange, load_sql
from shadowstream.core.errors import ConfigError

QUERIES = [
    "challengers",
    "slices",
    "examples",
    "example_traces",
    "timeseries",
    "timeseries_fine",
    "latency_grid",
    "latency_bounds",
    "summary",
    "measures",
    "measure_slices",
    "resources",
    "resource_slices",
    "router_sampling",
    "batch_comparisons",
    "endpoints",
    "provisional",
    "judge_verdicts",
]


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", QUERIES)
def test_every_placeholder_left_is_a_typed_parameter(name: str, exact: bool) -> None:
    sql = load_sql(name, "shadow_db", exact)
    leftovers = re.findall(r"\{[^}]*\}", sql)
    assert leftovers, "every query is filtered by bound parameters"
    assert all(re.fullmatch(r"\{\w+:[A-Za-z0-9(), ']+\}", p) for p in leftovers), leftovers
    assert "{db}" not in sql and "shadow_db." in sql
    if exact:  # --exact reads the deduplicated stored comparisons, never a rollup
        assert "FINAL" in sql and "comparisons_minute" not in sql


def test_rollup_and_exact_sources() -> None:
    rollup = load_sql("challengers", "d")
    assert "d.comparisons_hour" in rollup and "d.comparisons_minute" in rollup
    assert "FINAL" not in rollup
    exact = load_sql("challengers", "d", exact=True)
    assert "d.comparisons FINAL" in exact and "comparisons_minute" not in exact
    assert "comparison_examples" in load_sql("examples", "d")
    assert "comparison_examples" not in load_sql("examples", "d", exact=True)


def test_every_sql_file_is_used() -> None:
    files = {
        entry.name.removesuffix(".sql")
        for entry in resources.files("shadowstream.analytics").joinpath("sql").iterdir()
        if entry.name.endswith(".sql")
    }
    helpers = {"minute_exact", "slices_exact", "examples_exact", "tiered_rollup"}
    helpers |= {
        "measures_exact",
        "measure_slices_exact",
        "resources_exact",
        "resource_slices_exact",
    }
    assert files == set(QUERIES) | helpers


@pytest.mark.parametrize("name", ["shadow; DROP TABLE x", "1abc", "a.b", ""])
def test_database_names_are_validated(name: str) -> None:
    with pytest.raises(ConfigError):
        load_sql("challengers", name)


def test_time_range_snaps_to_minutes_and_finds_whole_hours() -> None:
    window = TimeRange(
        dt.datetime(2026, 1, 1, 10, 17, 42, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 13, 5, 9, tzinfo=dt.UTC),
    ).snapped()
    assert window.since == dt.datetime(2026, 1, 1, 10, 17, tzinfo=dt.UTC)
    assert window.until == dt.datetime(2026, 1, 1, 13, 5, tzinfo=dt.UTC)
    assert window.hours() == (
        dt.datetime(2026, 1, 1, 11, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 13, tzinfo=dt.UTC),
    )
    short = TimeRange(window.since, window.since + dt.timedelta(minutes=30))
    assert short.hours() == (short.since, short.since)  # no whole hour: minutes only
    params = TimeRange().parameters()
    assert params["since"] == EPOCH.replace(tzinfo=None)
    assert params["until"] == FAR_FUTURE.replace(tzinfo=None)
    assert params["hour_since"].tzinfo is None
    # a naive time is taken as UTC
    naive = TimeRange(dt.datetime(2026, 1, 1, 10, 30, 30)).snapped()
    assert naive.since == dt.datetime(2026, 1, 1, 10, 30, tzinfo=dt.UTC)
