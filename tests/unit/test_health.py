"""Liveness vs readiness, the broker watch, and how an agent's loop meets broker trouble.

Kafka is faked here; tests/integration/test_liveness.py runs the same code against
real processes, a broker that hangs and one that restarts empty.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from shadowstream.core.errors import BrokerUnavailableError, GroupMembershipLostError
from shadowstream.core.kafka import KafkaClientConfig, TopicSpec
from shadowstream.pipeline.health import ProcessHealth
from shadowstream.runtime import broker_watch
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.broker_watch import TOPICS_RECREATED, BrokerWatch
from shadowstream.runtime.health import AgentHealth
from shadowstream.runtime.kafka_io import UndeliveredOutputsError


def agent_health(name: str = "router", **changes: Any) -> AgentHealth:
    values: dict[str, Any] = {
        "name": name,
        "phase": "running",
        "crashed": False,
        "stalled_s": 0.5,
        "stall_timeout_s": 60.0,
        "reasons": [],
    }
    values.update(changes)
    return AgentHealth(**values)


class FakeAgent:
    def __init__(self, health: AgentHealth) -> None:
        self._health = health
        self.agent_name = health.name
        self.timings: dict[str, float] = {}

    def health(self) -> AgentHealth:
        return self._health


class FakeWatch:
    def __init__(self, reachable: bool | None, problems: list[str] | None = None) -> None:
        self.reachable = reachable
        self._problems = problems or []
        self.first_ok_at = None

    def problems(self) -> list[str]:
        return self._problems

    def status(self) -> dict[str, Any]:
        return {"reachable": self.reachable}


def check(watch: FakeWatch, *healths: AgentHealth) -> dict[str, Any]:
    agents: Any = [FakeAgent(h) for h in healths]
    return ProcessHealth(agents, watch).check()  # type: ignore[arg-type]


def test_ready_when_the_broker_answers_and_every_agent_holds_partitions() -> None:
    state = check(FakeWatch(True), agent_health(), agent_health("sink"))
    assert state["live"] and state["ready"] and state["reasons"] == []


def test_an_unreachable_broker_is_not_ready_but_alive() -> None:
    state = check(FakeWatch(False, ["broker unreachable for 12s"]), agent_health())
    assert state["live"] and not state["ready"]
    assert state["reasons"] == ["broker unreachable for 12s"]


def test_a_stalled_agent_fails_liveness_only_while_the_broker_answers() -> None:
    stuck = agent_health(stalled_s=120.0)
    assert not check(FakeWatch(True), stuck)["live"]
    waiting = check(FakeWatch(False, ["broker unreachable for 120s"]), stuck)
    assert waiting["live"] and not waiting["ready"]  # restarting would not bring the broker


def test_a_crashed_agent_fails_liveness_and_readiness() -> None:
    crashed = agent_health("sink", phase="failed", crashed=True, reasons=["crashed: boom"])
    state = check(FakeWatch(True), agent_health(), crashed)
    assert not state["live"] and not state["ready"]
    assert state["reasons"] == ["sink: crashed: boom"]


def test_agent_reasons_make_the_process_not_ready() -> None:
    sink = agent_health("sink", reasons=["cannot store in ClickHouse, consumption paused (x)"])
    state = check(FakeWatch(True), sink)
    assert state["live"] and not state["ready"]
    assert state["reasons"] == ["sink: cannot store in ClickHouse, consumption paused (x)"]


# -- the broker watch ------------------------------------------------------------------------
class FakeMetadata:
    def __init__(self, topics: dict[str, int]) -> None:
        self.cluster_id = "c"
        self.topics = {
            name: type("T", (), {"partitions": dict.fromkeys(range(n))})()
            for name, n in topics.items()
        }


class FakeAdmin:
    def __init__(self) -> None:
        self.topics: dict[str, int] | None = {"a": 4, "b": 4}  # None: unreachable

    def list_topics(self, timeout: float) -> FakeMetadata:
        if self.topics is None:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "connection refused"))
        return FakeMetadata(self.topics)


def test_watch_reports_an_outage_and_recreates_topics_a_restarted_broker_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = FakeAdmin()
    created: list[list[str]] = []

    def ensure(client: Any, specs: list[TopicSpec], timeout: float) -> list[str]:
        created.append([s.name for s in specs])
        for spec in specs:
            assert admin.topics is not None
            admin.topics[spec.name] = spec.partitions
        return [s.name for s in specs]

    monkeypatch.setattr(broker_watch, "ensure_topics", ensure)
    watch = BrokerWatch(KafkaClientConfig("127.0.0.1:1"), [TopicSpec("a", 4), TopicSpec("b", 4)])
    watch._admin = admin
    events: list[str] = []
    watch.add_listener(events.append)
    assert watch.problems() == ["checking the broker"]
    watch.probe()
    assert watch.reachable and watch.problems() == []
    admin.topics = None  # killed
    watch.probe()
    assert watch.reachable is False and watch.problems()[0].startswith("broker unreachable")
    admin.topics = {}  # back, empty
    watch.probe()
    assert created == [["a", "b"]]
    assert events == [broker_watch.BROKER_BACK, TOPICS_RECREATED]
    assert watch.problems() == [] and watch.status()["topics_recreated"] == 1
    assert watch.status()["outages"] == 1


def test_watch_never_fixes_a_partition_count_it_did_not_expect() -> None:
    admin = FakeAdmin()
    admin.topics = {"a": 4, "b": 2}
    watch = BrokerWatch(KafkaClientConfig("127.0.0.1:1"), [TopicSpec("a", 4), TopicSpec("b", 4)])
    watch._admin = admin
    watch.probe()
    assert watch.problems() == ["b has 2 partitions, expected 4"]


def test_missing_topics_are_only_reported_without_create_permission() -> None:
    admin = FakeAdmin()
    admin.topics = {"a": 4}
    watch = BrokerWatch(
        KafkaClientConfig("127.0.0.1:1"),
        [TopicSpec("a", 4), TopicSpec("b", 4)],
        create_missing=False,
    )
    watch._admin = admin
    watch.probe()
    assert watch.problems() == ["missing topics: b"]


# -- an agent's loop -------------------------------------------------------------------------
class FakeConsumer:
    def __init__(self) -> None:
        self.fences: list[tuple[str, bool]] = []

    def fence(self, reason: str, *, rejoin_now: bool = False) -> None:
        self.fences.append((reason, rejoin_now))


class Scripted(AgentService):
    """Raises what the script says, one step at a time."""

    agent_name = "scripted"

    def __init__(self, script: list[BaseException | None]) -> None:
        super().__init__()
        self.script = script
        self.dropped = 0
        self.consumer: Any = FakeConsumer()

    def group_consumer(self) -> Any:
        return self.consumer

    async def step(self) -> None:
        error = self.script.pop(0)
        if error is not None:
            raise error

    def drop_uncommitted(self) -> None:
        self.dropped += 1


def test_the_loop_rejoins_waits_and_only_crashes_on_the_unknown() -> None:
    agent = Scripted(
        [
            GroupMembershipLostError("offset commit: UNKNOWN_MEMBER_ID"),
            UndeliveredOutputsError("1 message could not be delivered"),
            BrokerUnavailableError("offset commit: no answer within 10s"),
            None,
            RuntimeError("a bug"),
        ]
    )

    async def run() -> None:
        for _ in range(4):
            await agent._step_once()
        with pytest.raises(RuntimeError):
            await agent._step_once()

    asyncio.run(run())
    assert agent.dropped == 2
    assert [rejoin_now for _, rejoin_now in agent.consumer.fences] == [False, True]


def test_the_join_clock_leaves_out_time_the_process_was_frozen() -> None:
    from shadowstream.runtime.clock import RunningClock

    now = [0.0]
    clock = RunningClock(max_gap_s=1.0, source=lambda: now[0])
    for _ in range(10):  # running: ticks 0.2 s apart, nothing left out
        now[0] += 0.2
        clock.tick()
    assert clock() == pytest.approx(2.0)
    now[0] += 30.0  # SIGSTOP for 30 s
    clock.tick()
    assert clock() == pytest.approx(3.0)  # the gap counts as one max_gap_s
    assert clock.skipped_s == pytest.approx(29.0)
