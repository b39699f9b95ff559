"""Group membership bookkeeping, Kafka error classes, and offsets across a rejoin."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from shadowstream.core.errors import (
    BrokerUnavailableError,
    ConfigError,
    GroupMembershipLostError,
)
from shadowstream.runtime.kafka_errors import ErrorLog, classify
from shadowstream.runtime.kafka_io import OffsetTracker
from shadowstream.runtime.membership import Membership


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_unassigned_time_counts_from_start_and_from_a_revocation() -> None:
    clock = Clock()
    m = Membership("router", rejoin_after_s=4.0, clock=clock)
    clock.now += 3
    assert m.unassigned_for() == 3  # joining since start-up
    m.on_assign([("t", 0), ("t", 1)])
    clock.now += 50
    assert m.unassigned_for() == 0 and m.joined
    m.on_revoke([("t", 0)])
    assert m.unassigned_for() == 0  # still holds t[1]
    m.on_lost([("t", 1)])
    clock.now += 7
    assert m.unassigned_for() == 7 and not m.joined
    assert m.counts["losses"] == 1 and m.counts["revocations"] == 2


def test_a_fenced_member_rejoins_itself_only_if_the_group_does_not_reassign_in_time() -> None:
    clock = Clock()
    m = Membership("sink", rejoin_after_s=4.0, clock=clock)
    m.on_assign([("t", 0)])
    m.fence("offset commit: UNKNOWN_MEMBER_ID")
    assert m.fenced is not None
    clock.now += 3
    assert not m.take_rejoin()  # librdkafka may still rejoin on its own
    assert m.unassigned_for() == 3  # fenced counts as holding nothing usable
    clock.now += 1.5
    assert m.take_rejoin()  # now the consumer re-subscribes, once ...
    assert not m.take_rejoin()
    clock.now += 4.5
    assert m.take_rejoin()  # ... and again if that rejoin stalls too
    m.on_assign([("t", 0)])
    assert m.fenced is None and not m.take_rejoin() and m.unassigned_for() == 0
    assert m.counts["fences"] == 1 and m.counts["rejoins"] == 2


def test_outputs_lost_rejoin_at_once() -> None:
    clock = Clock()
    m = Membership("router", rejoin_after_s=60.0, clock=clock)
    m.on_assign([("t", 0)])
    m.fence("outputs lost", rejoin_now=True)
    assert m.take_rejoin()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (KafkaError.UNKNOWN_MEMBER_ID, GroupMembershipLostError),
        (KafkaError.ILLEGAL_GENERATION, GroupMembershipLostError),
        (KafkaError.REBALANCE_IN_PROGRESS, GroupMembershipLostError),
        (KafkaError._STATE, GroupMembershipLostError),
        (KafkaError._WAIT_COORD, BrokerUnavailableError),
        (KafkaError.COORDINATOR_NOT_AVAILABLE, BrokerUnavailableError),
        (KafkaError._TRANSPORT, BrokerUnavailableError),
        (KafkaError.REQUEST_TIMED_OUT, BrokerUnavailableError),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, BrokerUnavailableError),
        (KafkaError.FENCED_INSTANCE_ID, ConfigError),
        (KafkaError.GROUP_AUTHORIZATION_FAILED, ConfigError),
    ],
)
def test_kafka_errors_are_classified_by_what_the_agent_should_do(code: int, kind: type) -> None:
    error = classify(KafkaError(code), "offset commit")
    assert isinstance(error, kind)
    assert str(error).startswith("offset commit: ")


def test_error_log_says_each_kind_once_then_at_most_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    errors = ErrorLog(logging.getLogger("t"), "router", interval_s=30.0, clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            errors.record(KafkaError(KafkaError._TRANSPORT, "connection refused"))
        errors.record(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
        clock.now += 31
        errors.record(KafkaError(KafkaError._TRANSPORT, "connection refused"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "99 more like it" in lines[2]
    assert errors.count == 102


def test_a_call_started_before_a_rejoin_does_not_complete_its_redelivered_copy() -> None:
    tracker = OffsetTracker()
    old = tracker.start("t", 0, 5)  # in flight when the membership was lost
    tracker.forget_all()
    new = tracker.start("t", 0, 5)  # the same offset, re-delivered after the rejoin
    assert new != old
    tracker.finish("t", 0, 5, old)  # the old call answers late
    assert [tp.offset for tp in tracker.committable()] == [5]  # not past the new call
    tracker.finish("t", 0, 5, new)
    assert [tp.offset for tp in tracker.committable()] == [6]


def test_librdkafka_repeats_are_held_back(caplog: pytest.LogCaptureFixture) -> None:
    from shadowstream.core.kafka import RepeatFilter

    logger = logging.getLogger("t.librdkafka")
    logger.addFilter(RepeatFilter(interval_s=30.0))
    with caplog.at_level(logging.INFO, logger="t.librdkafka"):
        for client in range(1, 4):
            for port in range(50):  # the same failure, other numbers
                logger.error(
                    "FAIL [rdkafka#consumer-%s]: 127.0.0.1:%s: Connection refused (after %sms)",
                    client,
                    port,
                    port,
                )
        logger.warning("GroupCoordinator: session timed out")
    assert [r.getMessage()[:4] for r in caplog.records] == ["FAIL", "Grou"]
