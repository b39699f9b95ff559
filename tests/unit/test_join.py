"""The join engine: either side first, duplicates, windows, late arrivals, bounded state."""

from __future__ import annotations

from typing import Any

import pytest

from shadowstream.schemas.wire import Marker
from shadowstream.stream_agents.join import CHAMPION, JoinEngine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build(request: Any, champion: Any, challenger: Any, name: str, outcome: str) -> dict[str, Any]:
    return {
        "request_id": (request or champion or challenger)["request_id"],
        "challenger": name,
        "outcome": outcome,
        "champion": champion is not None,
        "challenger_present": challenger is not None,
    }


def req(rid: str = "r1") -> dict[str, Any]:
    return {"request_id": rid, "experiment_id": "live"}


def champ(rid: str = "r1", status: str = "ok") -> dict[str, Any]:
    return {"request_id": rid, "role": "champion", "challenger": "", "status": status}


def chall(name: str, rid: str = "r1", status: str = "ok") -> dict[str, Any]:
    return {"request_id": rid, "role": "challenger", "challenger": name, "status": status}


def route_to(*names: str) -> Any:
    return lambda request: list(names)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> JoinEngine:
    return JoinEngine(window_s=30, late_retention_s=120, build=build, clock=clock, wall_clock=clock)


def test_request_then_champion_then_challenger(engine: JoinEngine) -> None:
    assert engine.add_request(req(), route_to("a")) == []
    assert engine.add_response(champ()) == []
    out = engine.add_response(chall("a"))
    assert [(c["challenger"], c["outcome"]) for c in out] == [("a", "both_answered")]
    assert engine.open_entries == 0


@pytest.mark.parametrize(
    "order",
    [
        ("req", "champ", "a"),
        ("req", "a", "champ"),
        ("champ", "req", "a"),
        ("a", "req", "champ"),
        ("a", "champ", "req"),
        ("champ", "a", "req"),
    ],
)
def test_any_arrival_order_gives_one_comparison(engine: JoinEngine, order: tuple[str, ...]) -> None:
    out: list[dict[str, Any]] = []
    for item in order:
        if item == "req":
            out += engine.add_request(req(), route_to("a"))
        elif item == "champ":
            out += engine.add_response(champ())
        else:
            out += engine.add_response(chall("a"))
    assert [c["outcome"] for c in out] == ["both_answered"]
    assert engine.open_entries == 0


def test_each_challenger_is_emitted_as_soon_as_its_pair_is_complete(engine: JoinEngine) -> None:
    engine.add_request(req(), route_to("fast", "slow"))
    engine.add_response(champ())
    out = engine.add_response(chall("fast"))
    assert [c["challenger"] for c in out] == ["fast"]
    assert engine.open_entries == 1  # still waiting for slow
    out = engine.add_response(chall("slow"))
    assert [c["challenger"] for c in out] == ["slow"]
    assert engine.open_entries == 0


def test_duplicates_never_produce_a_second_comparison(engine: JoinEngine) -> None:
    engine.add_request(req(), route_to("a"))
    assert engine.add_request(req(), route_to("a")) == []  # duplicate request, not re-routed
    engine.add_response(champ())
    engine.add_response(champ())
    assert len(engine.add_response(chall("a"))) == 1
    # after the close: redelivered events are recognised from the marker
    assert engine.add_response(chall("a")) == []
    assert engine.add_response(champ()) == []
    assert engine.add_request(req(), route_to("a")) == []
    assert engine.stats.duplicates == 5


def test_route_is_called_once_per_request(engine: JoinEngine) -> None:
    calls: list[str] = []

    def route(request: dict[str, Any]) -> list[str]:
        calls.append(request["request_id"])
        return ["a"]

    engine.add_response(champ())
    engine.add_request(req(), route)
    engine.add_request(req(), route)
    assert calls == ["r1"]


def test_not_sampled_requests_close_at_once_and_never_wait(engine: JoinEngine) -> None:
    assert engine.add_request(req(), route_to()) == []
    assert engine.open_entries == 0
    # the champion's answer arrives afterwards: nothing to join, nothing held
    assert engine.add_response(champ()) == []
    assert engine.open_entries == 0
    assert engine.stats.late == 0


def test_missing_challenger_after_the_window(engine: JoinEngine, clock: Clock) -> None:
    engine.add_request(req(), route_to("a", "b"))
    engine.add_response(champ())
    engine.add_response(chall("a"))
    clock.now += 29.9
    assert engine.expire() == []
    clock.now += 0.2
    out = engine.expire()
    assert [(c["challenger"], c["outcome"]) for c in out] == [("b", "challenger_missing")]
    assert engine.open_entries == 0


def test_missing_champion_and_both_missing(engine: JoinEngine, clock: Clock) -> None:
    engine.add_request(req(), route_to("a", "b"))
    engine.add_response(chall("a"))
    clock.now += 31
    out = {c["challenger"]: c["outcome"] for c in engine.expire()}
    assert out == {"a": "champion_missing", "b": "both_missing"}


def test_a_challenger_timeout_counts_as_missing(engine: JoinEngine) -> None:
    engine.add_request(req(), route_to("a"))
    engine.add_response(champ())
    out = engine.add_response(chall("a", status="timeout"))
    assert out[0]["outcome"] == "challenger_missing"


def test_late_response_is_counted_once_and_never_joined(engine: JoinEngine, clock: Clock) -> None:
    engine.add_request(req(), route_to("a"))
    engine.add_response(champ())
    clock.now += 31
    assert [c["outcome"] for c in engine.expire()] == ["challenger_missing"]
    late = engine.add_response(chall("a"))
    assert [c["outcome"] for c in late] == ["late"]
    assert engine.add_response(chall("a")) == []  # the same late response again
    assert engine.stats.late == 1


def test_late_champion_reports_each_asked_challenger(engine: JoinEngine, clock: Clock) -> None:
    engine.add_request(req(), route_to("a", "b"))
    engine.add_response(chall("a"))
    engine.add_response(chall("b"))
    clock.now += 31
    engine.expire()
    late = engine.add_response(champ())
    assert sorted((c["challenger"], c["outcome"]) for c in late) == [("a", "late"), ("b", "late")]


def test_skipped_side_closes_without_a_comparison(engine: JoinEngine) -> None:
    engine.add_request(req(), route_to("a", "b"))
    engine.add_response(champ())
    engine.add_response(chall("a", status="skipped"))
    out = engine.add_response(chall("b"))
    assert [c["challenger"] for c in out] == ["b"]
    assert engine.open_entries == 0


def test_responses_without_a_request_are_orphans(engine: JoinEngine, clock: Clock) -> None:
    engine.add_response(champ("ghost"))
    clock.now += 31
    assert engine.expire() == []
    assert engine.stats.orphans == 1
    assert engine.open_entries == 0


def test_unsolicited_challenger_is_ignored(engine: JoinEngine) -> None:
    engine.add_request(req(), route_to("a"))
    assert engine.add_response(chall("zzz")) == []
    assert engine.stats.unsolicited == 1


def test_expiry_walks_only_the_expired_prefix(engine: JoinEngine, clock: Clock) -> None:
    for i in range(1000):
        engine.add_request(req(f"r{i}"), route_to("a"))
        clock.now += 0.01
    calls = {"n": 0}
    original = engine._build

    def counting(*args: Any) -> dict[str, Any]:
        calls["n"] += 1
        return original(*args)

    engine._build = counting  # type: ignore[method-assign]
    clock.now = 1000.0 + 30 + 1.0  # the first ~100 are due
    out = engine.expire()
    assert 95 <= len(out) <= 105
    assert engine.open_entries == 1000 - len(out)


def test_state_stays_bounded_over_a_long_run(clock: Clock) -> None:
    engine = JoinEngine(window_s=5, late_retention_s=10, build=build, clock=clock, wall_clock=clock)
    for i in range(200_000):
        rid = f"r{i}"
        engine.add_request(req(rid), route_to("a"))
        engine.add_response(champ(rid))
        if i % 10:  # 10% never answered: they expire
            engine.add_response(chall("a", rid))
        clock.now += 0.001  # 1000 requests/s
        if i % 250 == 0:
            engine.expire()
            engine.drain_markers()
            engine.commit_offset(0, i)
    # open entries: at most a window's worth (5 s * 1000/s * 10%)
    assert engine.open_entries <= 600
    # markers: at most retention * 1.5 worth (10 s * 1000/s * 1.5)
    assert engine.markers <= 15_500


def test_commit_offset_stays_below_events_still_held(engine: JoinEngine, clock: Clock) -> None:
    engine.add_request(req("r1"), route_to("a"), source=0, offset=10)
    engine.add_request(req("r2"), route_to("a"), source=0, offset=11)
    engine.add_response(champ("r2"), source=2, offset=5)
    engine.add_response(chall("a", "r2"), source=2, offset=6)
    # r2 is complete; r1 still holds offset 10
    assert engine.commit_offset(0, 12) == 10
    assert engine.commit_offset(2, 7) == 7
    engine.add_response(champ("r1"), source=2, offset=7)
    assert engine.commit_offset(2, 8) == 7
    engine.add_response(chall("a", "r1"), source=2, offset=8)
    assert engine.commit_offset(0, 12) == 12
    assert engine.commit_offset(2, 9) == 9


def test_markers_round_trip_through_the_changelog(clock: Clock) -> None:
    first = JoinEngine(
        window_s=30, late_retention_s=120, build=build, clock=clock, wall_clock=clock
    )
    first.add_request(req(), route_to("a", "b"))
    first.add_response(champ())
    first.add_response(chall("a"))
    clock.now += 31
    first.expire()
    markers = first.drain_markers()
    assert markers == [("r1", Marker(clock.now, frozenset({"a", "b"}), frozenset({"a", CHAMPION})))]
    # a new owner after a crash: restores markers, then sees replayed events
    second = JoinEngine(
        window_s=30, late_retention_s=120, build=build, clock=clock, wall_clock=clock
    )
    assert second.restore_markers(markers) == 1
    assert second.add_request(req(), route_to("a", "b")) == []  # not fanned out again
    assert second.add_response(chall("a")) == []  # duplicate
    assert [c["outcome"] for c in second.add_response(chall("b"))] == ["late"]


def test_expired_markers_are_not_restored(clock: Clock) -> None:
    engine = JoinEngine(
        window_s=30, late_retention_s=120, build=build, clock=clock, wall_clock=clock
    )
    old = Marker(clock.now - 500, frozenset({"a"}), frozenset({"a", CHAMPION}))
    assert engine.restore_markers([("old", old)]) == 0


def test_record_replay_challengers_wait_for_the_champions_answer(clock: Clock) -> None:
    sent: list[tuple[str, tuple[str, ...]]] = []

    def dispatch(request: Any, champion: Any, names: tuple[str, ...]) -> None:
        sent.append((champion["tool_trace"], names))

    engine = JoinEngine(
        window_s=30,
        late_retention_s=120,
        build=build,
        clock=clock,
        wall_clock=clock,
        replay=frozenset({"agent"}),
        dispatch=dispatch,
    )
    engine.add_request(req(), route_to("plain", "agent"))
    assert sent == []  # the champion has not answered: nothing to replay yet
    engine.add_response({**champ(), "tool_trace": '[{"name": "search"}]'})
    assert sent == [('[{"name": "search"}]', ("agent",))]
    # champion first, request second: dispatched as soon as the request is routed
    engine.add_response({**champ("r2"), "tool_trace": "[]"})
    engine.add_request(req("r2"), route_to("agent"))
    assert sent[-1] == ("[]", ("agent",))
    # the answer joins like any other
    assert [c["outcome"] for c in engine.add_response(chall("agent"))] == ["both_answered"]


def test_record_replay_without_a_champion_is_champion_missing(clock: Clock) -> None:
    sent: list[Any] = []
    engine = JoinEngine(
        window_s=30,
        late_retention_s=120,
        build=build,
        clock=clock,
        wall_clock=clock,
        replay=frozenset({"agent"}),
        dispatch=lambda *args: sent.append(args),
    )
    engine.add_request(req(), route_to("agent"))
    clock.now += 31
    assert [c["outcome"] for c in engine.expire()] == ["both_missing"]
    assert sent == []
