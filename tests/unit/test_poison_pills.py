"""One bad event or row: the pieces that keep it from stopping the router or the sink."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from shadowstream.core.errors import WarehouseError, WarehouseRejectedError
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE
from shadowstream.schemas.timestamps import EventTimeWindow, peek_second_long
from shadowstream.sinks.clickhouse.isolation import RowIsolation, strict_check
from shadowstream.stream_agents.comparison import ComparisonBuilder
from shadowstream.stream_agents.fanout import RollingSpend
from shadowstream.stream_agents.guards import BuildFailure, Built, GuardedBuilder
from shadowstream.stream_agents.join import JoinEngine
from shadowstream.warehouse.client import _map_error, row_error_code

NOW = 1_800_000_000.0


def request(rid: str = "r-1", **overrides: Any) -> dict[str, Any]:
    return {
        "request_id": rid,
        "timestamp_us": int(NOW * 1e6),
        "service": "s",
        "endpoint": "/e",
        "champion_model": "m",
        "payload": "{}",
        "attributes": {},
        "experiment_id": "live",
        **overrides,
    }


def response(rid: str = "r-1", role: str = "champion", **overrides: Any) -> dict[str, Any]:
    return {
        "request_id": rid,
        "timestamp_us": int(NOW * 1e6),
        "role": role,
        "challenger": "" if role == "champion" else "c",
        "model": "m",
        "output": '{"a": 1}',
        "latency_ms": 1.0,
        "status": "ok",
        "error": None,
        "usage": {"tokens_in": 1, "tokens_out": 2, "tool_calls": None, "cost": None},
        "tool_trace": None,
        "experiment_id": "live",
        **overrides,
    }


# -- the router's guarded builder --------------------------------------------------------------
def test_a_comparison_that_cannot_be_encoded_is_a_failure_not_an_exception() -> None:
    builder = ComparisonBuilder({})

    def poisoned(*args: Any) -> dict[str, Any]:
        comparison = builder(*args)
        comparison["champion_tool_calls"] = 2**31  # what the old decoders let through
        return comparison

    guarded = GuardedBuilder(poisoned, max_bytes=1_000_000)
    out = guarded(request(), response(), response(role="challenger"), "c", "both_answered")
    assert isinstance(out, BuildFailure)
    assert out.request_id == "r-1" and out.challenger == "c" and out.outcome == "both_answered"
    assert "does not fit an Avro int" in out.error
    assert guarded.failures == 1


def test_a_builder_bug_and_an_oversized_comparison_are_failures() -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise RecursionError("maximum recursion depth exceeded")

    out = GuardedBuilder(broken, 1_000_000)(request(), response(), None, "c", "challenger_missing")
    assert isinstance(out, BuildFailure) and "RecursionError" in out.describe()
    huge = request(attributes={"blob": "x" * 5_000})
    guarded = GuardedBuilder(ComparisonBuilder({}), max_bytes=4_000)
    out = guarded(huge, response(), None, "c", "challenger_missing")
    assert isinstance(out, BuildFailure) and "over the 4,000 limit" in out.error
    out = guarded(request(), response(), None, "c", "no such outcome")
    assert isinstance(out, BuildFailure) and "KeyError" in out.error
    ok = GuardedBuilder(ComparisonBuilder({}), 1_000_000)(request(), response(), None, "c", "late")
    assert isinstance(ok, Built) and ok.key == "r-1"
    assert COMPARISON.decode(ok.value)["outcome"] == "late"


def test_the_join_marks_a_failed_pair_emitted_so_expiry_does_not_retry_it() -> None:
    calls: list[str] = []

    def flaky(req: Any, champion: Any, challenger: Any, name: str, outcome: str) -> Any:
        calls.append(outcome)
        raise ValueError("bad pair")

    clock = [0.0]
    engine = JoinEngine(
        window_s=5,
        late_retention_s=60,
        build=GuardedBuilder(flaky, 1_000_000),
        clock=lambda: clock[0],
        wall_clock=lambda: clock[0],
    )
    engine.add_request(request(), lambda r: ["c"])
    engine.add_response(response())
    out = engine.add_response(response(role="challenger"))
    assert len(out) == 1 and isinstance(out[0], BuildFailure)
    clock[0] = 10.0
    assert engine.expire() == []  # closed: no second attempt, no challenger_missing
    assert calls == ["both_answered"] and engine.open_entries == 0


# -- the comparison builder itself --------------------------------------------------------------
def test_a_format_check_or_tool_comparison_that_raises_is_noted_not_fatal() -> None:
    def check(output: Any) -> bool:
        raise RecursionError("maximum recursion depth exceeded")

    builder = ComparisonBuilder({}, format_checks={"c": check})
    trace = "[" * 5000 + "]" * 5000  # nested past orjson's limit: compared as text
    champion = response(tool_trace=trace)
    challenger = response(role="challenger", tool_trace='[{"name": "x"}]')
    comparison = builder(request(), champion, challenger, "c", "both_answered")
    assert comparison["champion_format_valid"] is None
    assert "format check error: RecursionError" in comparison["diff_summary"]
    COMPARISON.encode(comparison)


def test_non_finite_or_negative_usage_does_not_corrupt_a_budget() -> None:
    spend = RollingSpend(clock=lambda: NOW)
    from shadowstream.stream_agents.fanout import FanOut

    fanout = FanOut([])
    fanout._spend["c"] = spend
    for cost in (math.nan, math.inf, -5.0):
        fanout.record_usage("c", response(usage={"tokens_in": -10, "tokens_out": 3, "cost": cost}))
    assert spend.tokens == 9 and spend.cost == 0.0
    assert spend.avg_cost == 0.0 and not math.isnan(spend.avg_tokens or 0.0)


# -- timestamps -----------------------------------------------------------------------------
def test_timestamps_outside_what_clickhouse_keeps_are_problems() -> None:
    window = EventTimeWindow.for_retention(90, 86_400, clock=lambda: NOW)
    now_us = int(NOW * 1e6)
    assert window.problem(now_us) is None
    assert window.problem(now_us - 89 * 86_400 * 10**6) is None
    assert window.problem(now_us + 3600 * 10**6) is None
    assert "older than the 90-day retention" in (window.problem(0) or "")
    assert "1970-01-01T00:00:00Z" in (window.problem(0) or "")
    assert "ahead of this clock" in (window.problem(2**63 - 1) or "")
    assert "older" in (window.problem(-(2**63)) or "")


def test_the_timestamp_of_a_raw_event_is_read_without_decoding_it() -> None:
    for ts in (0, 1, -1, 2**63 - 1, -(2**63), int(NOW * 1e6)):
        assert peek_second_long(REQUEST.encode(request(timestamp_us=ts))[10:]) == ts
        assert peek_second_long(RESPONSE.encode(response("x" * 300, timestamp_us=ts))[10:]) == ts
    assert peek_second_long(b"") is None
    assert peek_second_long(b"\x7f") is None  # a length past the end
    assert peek_second_long(b"\x02a\x80\x00") is None  # non-canonical varint


# -- ClickHouse errors: rows or server --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "rows"),
    [
        (
            "Code: 1001. DB::Exception: std::exception. Code: 1001, type: avro::Exception, "
            "e.what() = Value out of range for Avro int: 2147483648 (version 26.9.2.1). "
            "(STD_EXCEPTION)",
            True,
        ),
        ("Code: 252. DB::Exception: Too many partitions for single INSERT block (more", True),
        ("Code: 321. DB::Exception: Value out of range of data type", True),
        ("Code: 252. DB::Exception: Too many parts (300). Merges are processing", False),
        ("Code: 60. DB::Exception: Table probe.nosuch_in does not exist. (UNKNOWN_TABLE)", False),
        ("Code: 241. DB::Exception: Memory limit (total) exceeded", False),
        (
            "Code: 8. DB::Exception: Code: 8. DB::Exception: Field diff_summary not found in "
            "Avro schema: (while reading header): (in file/uri /tmp/x.raw)",
            False,
        ),
        (
            "Code: 691. DB::Exception: Unknown element 'weird' for enum: column outcome: "
            "(while reading header)",
            False,
        ),
        ("something went wrong without a code", False),
    ],
)
def test_clickhouse_errors_about_rows_are_told_from_the_others(text: str, rows: bool) -> None:
    assert (row_error_code(text) is not None) is rows
    mapped = _map_error(RuntimeError(text), "chdb:///x")
    assert isinstance(mapped, WarehouseRejectedError) is rows
    assert isinstance(mapped, WarehouseError)


# -- isolating the rows ClickHouse refuses -----------------------------------------------------------
class Table:
    """Stands in for an insert: refuses any batch containing a body that starts with b"!"."""

    def __init__(self, down_after: int | None = None) -> None:
        self.rows: list[bytes] = []
        self.inserts = 0
        self.down_after = down_after

    def insert(self, bodies: list[bytes]) -> None:
        self.inserts += 1
        if self.down_after is not None and self.inserts > self.down_after:
            raise WarehouseError("ClickHouse error: Code: 241. Memory limit exceeded")
        bad = [b for b in bodies if b.startswith(b"!")]
        if bad:
            raise WarehouseRejectedError(
                f"ClickHouse refused the data: Code: 117. row {bad[0]!r} is bad", 117
            )
        self.rows += bodies


@pytest.mark.parametrize("n_bad", [1, 3, 40])
def test_bisection_stores_every_good_row_and_sets_aside_exactly_the_bad_ones(n_bad: int) -> None:
    rng = random.Random(n_bad)
    bodies = [f"row-{i}".encode() for i in range(2_000)]
    bad = set(rng.sample(range(len(bodies)), n_bad))
    for i in bad:
        bodies[i] = b"!" + bodies[i]
    table = Table()
    isolation = RowIsolation(bodies, table.insert, lambda body: None)
    isolation.run()
    assert sorted(table.rows) == sorted(b for i, b in enumerate(bodies) if i not in bad)
    assert {i for i, _, _ in isolation.rejected} == bad
    assert all(r == "clickhouse_rejected" and "is bad" in d for _, r, d in isolation.rejected)
    assert isolation.remaining() == []
    # about 2 k log2(n / k) inserts, far from one per row
    assert isolation.inserts <= 2 * n_bad * (math.log2(len(bodies) / n_bad) + 2)


def test_codec_refusals_are_set_aside_before_any_insert() -> None:
    good = [REQUEST.encode(request(f"r{i}"))[10:] for i in range(5)]
    bodies = [*good, good[0][:-3]]  # truncated
    table = Table()
    isolation = RowIsolation(bodies, table.insert, strict_check(REQUEST))
    isolation.run()
    assert isolation.rejected == [
        (5, "truncated", "truncated shadowstream.events.RequestEvent body")
    ]
    assert table.rows == good and table.inserts == 1


def test_an_outage_during_isolation_leaves_the_rest_to_store_later() -> None:
    bodies = [f"row-{i}".encode() for i in range(64)]
    bodies[60] = b"!bad"
    table = Table(down_after=4)
    isolation = RowIsolation(bodies, table.insert, lambda body: None)
    with pytest.raises(WarehouseError):
        isolation.run()
    left = isolation.remaining()
    stored = isolation.stored
    assert stored and left and stored.isdisjoint(left)
    assert sorted(stored | set(left) | {i for i, _, _ in isolation.rejected}) == list(range(64))
