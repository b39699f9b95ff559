"""Offset tracking for out-of-order completion (the guard against faust-streaming#606)."""

from __future__ import annotations

from shadowstream.kafka_io import OffsetTracker


def positions(tracker: OffsetTracker) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): tp.offset for tp in tracker.committable()}


def test_commit_position_never_passes_work_in_flight() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        tracker.start("t", 0, offset)
    # a slow request (10) is still running while later ones finish
    for offset in (11, 12, 13, 14):
        tracker.finish("t", 0, offset)
    assert positions(tracker) == {("t", 0): 10}
    tracker.finish("t", 0, 10)
    assert positions(tracker) == {("t", 0): 15}


def test_partitions_are_independent_and_skips_count_as_done() -> None:
    tracker = OffsetTracker()
    tracker.start("t", 0, 0)
    tracker.skip("t", 1, 7)
    assert positions(tracker) == {("t", 0): 0, ("t", 1): 8}
    assert tracker.in_flight() == 1


def test_work_finishing_after_a_revoke_is_ignored() -> None:
    tracker = OffsetTracker()
    tracker.start("t", 0, 3)
    tracker.forget("t", 0)
    tracker.finish("t", 0, 3)
    assert positions(tracker) == {}
