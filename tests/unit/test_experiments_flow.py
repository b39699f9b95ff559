"""Batch runs without a broker: events, pacing, the result watcher, the displayed status."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.events import (
    TARGETS_HEADER,
    reference_event,
    request_event,
    targets_header,
)
from shadowstream.experiments.items import BatchItem, Reference
from shadowstream.experiments.pacing import InFlightWindow, RateLimiter
from shadowstream.experiments.status import ChallengerCounts, RunStatus
from shadowstream.experiments.store import (
    COMPLETED,
    INTERRUPTED,
    RUNNING,
    SUBMITTED,
    ExperimentRecord,
    now_ms,
    owner_alive,
    this_process,
)
from shadowstream.experiments.watcher import ResultWatcher, parse_marker_asked
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE, wire
from shadowstream.schemas.wire import Marker

TOPICS = TopicNames("t")


# -- events ------------------------------------------------------------------------------------
def test_an_item_becomes_a_request_and_a_champion_response() -> None:
    item = BatchItem(
        "q1",
        "/v1/x",
        '{"i":1}',
        "svc",
        "champ-v1",
        {"lang": "de"},
        Reference('{"a":1}', "champ-v1", 12.0, "ok", None, 3, 4, None, 0.5, None),
    )
    request = REQUEST.decode(REQUEST.encode(request_event("exp", item, 1_000)))
    assert request["request_id"] == "exp:q1"
    assert request["experiment_id"] == "exp"
    assert request["attributes"] == {"lang": "de"}
    assert item.reference is not None
    champion = RESPONSE.decode(
        RESPONSE.encode(reference_event("exp", "exp:q1", item.reference, 2_000))
    )
    assert champion["role"] == "champion" and champion["experiment_id"] == "exp"
    assert champion["usage"] == {"tokens_in": 3, "tokens_out": 4, "tool_calls": None, "cost": 0.5}
    assert targets_header(["a", "b"]) == [(TARGETS_HEADER, b"a,b")]


def test_the_watcher_reads_the_markers_the_router_writes() -> None:
    marker = Marker(1.0, frozenset({"a", "b"}), frozenset({"a"}))
    assert parse_marker_asked(wire.encode_marker(marker)) == {"a", "b"}
    assert parse_marker_asked(b"not json") is None
    assert parse_marker_asked(b'{"x": 1}') is None


# -- pacing --------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_paces_and_bursts_a_quarter_second() -> None:
    clock = Clock()
    limiter = RateLimiter(40.0, clock)
    assert limiter.try_take()
    assert not limiter.try_take()
    assert limiter.wait_time() == pytest.approx(1 / 40)
    clock.now += 10.0  # a long pause allows a burst of a quarter second, not ten seconds
    assert sum(limiter.try_take() for _ in range(100)) == 10
    clock.now += 1.0
    assert sum(limiter.try_take() for _ in range(100)) == 10
    slow = RateLimiter(0.5, clock)
    assert slow.try_take() and not slow.try_take()
    clock.now += 2.0
    assert slow.try_take()


def test_in_flight_window_follows_littles_law_between_floor_and_cap() -> None:
    window = InFlightWindow(floor=8, cap=500, target_delay_s=1.25)
    assert window.limit(0.0) == 8
    assert window.limit(100.0) == 125
    assert window.limit(10_000.0) == 500


# -- the watcher -----------------------------------------------------------------------------------
class Msg:
    def __init__(self, topic: str, key: bytes, value: bytes) -> None:
        self._topic, self._key, self._value = topic, key, value

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


def response(rid: str, challenger: str, status: str = "ok") -> Msg:
    record = {
        "request_id": rid,
        "timestamp_us": 1,
        "role": "challenger",
        "challenger": challenger,
        "model": "m",
        "output": "1",
        "latency_ms": 1.0,
        "status": status,
        "error": None,
        "usage": {"tokens_in": None, "tokens_out": None, "tool_calls": None, "cost": None},
        "tool_trace": None,
        "experiment_id": rid.split(":")[0],
    }
    return Msg(TOPICS.responses, rid.encode(), RESPONSE.encode(record))


def comparison(
    rid: str, challenger: str, outcome: str = "both_answered", status: str = "ok"
) -> Msg:
    record = {
        "request_id": rid,
        "challenger": challenger,
        "experiment_id": rid.split(":")[0],
        "outcome": outcome,
        "request_ts_us": 1,
        "compared_at_us": 2,
        "champion_status": "ok",
        "challenger_status": status,
    }
    return Msg(TOPICS.comparisons, rid.encode(), COMPARISON.encode(record))


def marker(rid: str, asked: list[str]) -> Msg:
    value = wire.encode_marker(Marker(1.0, frozenset(asked), frozenset()))
    return Msg(TOPICS.router_changelog, rid.encode(), value)


def watcher(baseline: dict[str, Any] | None = None) -> ResultWatcher:
    return ResultWatcher(
        KafkaClientConfig("localhost:1"), TOPICS, "exp", ["a", "b"], baseline or {}
    )


def test_watcher_resolves_requests_when_every_challenger_is_done() -> None:
    w = watcher()
    for i in range(3):
        w.submitted(f"exp:{i}")
    assert w.results().in_flight == 3
    w.handle(response("exp:0", "a"))
    assert w.results().in_flight == 3  # b still due
    w.handle(response("exp:0", "b", "error"))
    w.handle(response("exp:0", "b", "error"))  # a duplicate delivery counts once
    w.handle(response("other:1", "a"))  # another run, or live traffic: ignored
    w.handle(comparison("exp:1", "a"))
    w.handle(comparison("exp:1", "b", "late"))  # late arrivals never count
    w.handle(marker("exp:1", ["a"]))  # the router did not ask b
    results = w.results()
    assert results.in_flight == 1
    assert (results.answered, results.compared, results.unrouted) == (2, 1, 1)
    assert results.final == 2  # exp:1 is finished for a (compared) and b (not routed)
    assert results.answer_rate == pytest.approx(2 / 3.0 / 2)  # 2 answers, 3 s, 2 challengers
    w.handle(comparison("exp:0", "a"))
    w.handle(comparison("exp:0", "b", status="error"))
    results = w.results()
    assert (results.compared, results.failed, results.final) == (3, 1, 4)


def test_watcher_baseline_counts_and_unrouted_of_already_compared_pairs() -> None:
    w = watcher({"exp:0": {"a"}, "exp:1": {"a", "b"}})
    assert w.results().compared == 3
    w.submitted("exp:1")  # already complete: never in flight
    w.submitted("exp:0")
    w.handle(marker("exp:0", ["b"]))  # resubmitted to b only: a is not missing
    results = w.results()
    assert results.unrouted == 0 and results.in_flight == 1
    w.handle(skipped := response("exp:0", "b", "skipped"))
    w.handle(skipped)
    results = w.results()
    assert results.skipped == 1 and results.final == 4 and results.in_flight == 0


def test_watcher_reports_new_not_routed_requests_once() -> None:
    w = watcher()
    w.record_not_routed({"exp:1": ["a"]})  # known from ClickHouse: not news
    assert w.take_not_routed() == {}
    w.handle(marker("exp:2", []))
    w.handle(marker("exp:3", ["a"]))
    assert w.take_not_routed() == {"exp:2": ["a", "b"], "exp:3": ["b"]}
    assert w.take_not_routed() == {}
    assert w.results().unrouted == 4


def test_watcher_follows_cancel_commands_and_gives_up_on_old_requests() -> None:
    w = watcher()
    control = TOPICS.control
    w.handle(Msg(control, b"other", orjson.dumps({"type": "cancel", "experiment_id": "other"})))
    assert not w.results().cancelled
    w.handle(Msg(control, b"exp", orjson.dumps({"type": "cancel", "experiment_id": "exp"})))
    assert w.results().cancelled
    w.handle(Msg(control, b"exp", orjson.dumps({"type": "experiment", "experiment_id": "exp"})))
    assert not w.results().cancelled
    w.submitted("exp:9")
    assert w.expire_pending(60.0) == 0
    time.sleep(0.01)
    assert w.expire_pending(0.001) == 1
    results = w.results()
    assert results.in_flight == 0 and results.lost == 1


# -- displayed status ----------------------------------------------------------------------------
def record(status: str, owner: str = "", updated_ms: int | None = None) -> ExperimentRecord:
    return ExperimentRecord(
        "exp",
        ("a",),
        "eval",
        "src",
        {},
        10,
        status,
        50.0,
        owner or this_process(),
        created_ms=now_ms(),
        updated_ms=now_ms() if updated_ms is None else updated_ms,
    )


def test_status_follows_the_data() -> None:
    done = {"a": ChallengerCounts(compared=10)}
    assert RunStatus(record(SUBMITTED), 10, done).status == COMPLETED
    assert RunStatus(record(SUBMITTED), 10, {"a": ChallengerCounts(compared=9)}).status == SUBMITTED
    not_routed = {"a": ChallengerCounts(compared=7, not_routed=3)}
    assert RunStatus(record(SUBMITTED), 10, not_routed).status == COMPLETED
    assert RunStatus(record(RUNNING), 5).status == RUNNING
    stale = record(RUNNING, updated_ms=now_ms() - 120_000)
    assert RunStatus(stale, 5).status == INTERRUPTED
    dead = record(RUNNING, owner=f"{this_process().rsplit(':', 1)[0]}:999999999")
    assert owner_alive(dead.owner) is False
    assert RunStatus(dead, 5).status == INTERRUPTED
    assert owner_alive("elsewhere:1") is None
    assert owner_alive(this_process()) is True
