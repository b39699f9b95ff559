"""The pieces behind /metrics: librdkafka statistics, monotonic counters, missing extras."""

from __future__ import annotations

import json

from shadowstream.cli.entry import missing_extra_message
from shadowstream.pipeline.metrics import _Monotonic
from shadowstream.runtime.kafka_stats import ClientStatistics, parse_client_stats


def stats_document(**partitions: dict[str, int | bool]) -> str:
    return json.dumps(
        {
            "type": "consumer",
            "brokers": {
                "kafka:9092/bootstrap": {"nodeid": -1, "nodename": "kafka:9092", "state": "UP"},
                "kafka:9092/1": {"nodeid": 1, "nodename": "kafka:9092", "state": "UP"},
                "kafka-2:9092/2": {"nodeid": 2, "nodename": "kafka-2:9092", "state": "CONNECT"},
                "GroupCoordinator": {"nodeid": -1, "source": "logical", "state": "UP"},
            },
            "topics": {
                "shadow.requests": {
                    "partitions": {key: dict(value) for key, value in partitions.items()}
                }
            },
            "cgrp": {"assignment_size": 3, "rebalance_cnt": 2},
        }
    )


def test_lag_is_watermark_minus_committed_or_position_before_the_first_commit() -> None:
    doc = stats_document(
        **{
            "0": {"hi_offset": 100, "committed_offset": 40, "app_offset": 90},
            "1": {"hi_offset": 50, "committed_offset": -1001, "app_offset": 45},
            "2": {"hi_offset": 0, "committed_offset": -1001, "app_offset": -1001},
            "3": {"hi_offset": 7, "committed_offset": -1001, "app_offset": -1001},
            "4": {"hi_offset": 10, "committed_offset": 2, "desired": False},
            "-1": {"hi_offset": -1},
        }
    )
    snapshot = parse_client_stats(doc, now=123.0)
    assert snapshot.lag == {
        ("shadow.requests", 0): 60,
        ("shadow.requests", 1): 5,
        ("shadow.requests", 2): 0,
    }
    # one broker up (its bootstrap entry is the same broker), the other connecting
    assert snapshot.brokers_up == 1
    assert (snapshot.assigned_partitions, snapshot.rebalances, snapshot.reported_at) == (
        3,
        2,
        123.0,
    )


def test_unreadable_statistics_keep_the_last_good_snapshot() -> None:
    stats = ClientStatistics("g")
    stats.update(stats_document(**{"0": {"hi_offset": 5, "committed_offset": 5}}))
    good = stats.last
    stats.update("{not json")
    stats.update(json.dumps({"brokers": ["x"]}))  # wrong shape
    stats.update("[]")
    assert stats.last is good


def test_exported_counters_never_go_down() -> None:
    monotonic = _Monotonic()
    labels = {"event": "requests"}
    seen = [monotonic("join", labels, v) for v in (10, 25, 5, 9, 0, 3)]
    assert seen == [10, 25, 25, 29, 29, 32]
    assert monotonic("join", {"event": "late"}, 1) == 1  # per series


def test_a_missing_optional_dependency_names_the_extra() -> None:
    message = missing_extra_message(ModuleNotFoundError("No module named 'click'", name="click"))
    assert message is not None and "'shadowstream[cli]'" in message and "\n" not in message
    chdb = missing_extra_message(ModuleNotFoundError(name="chdb"))
    assert chdb is not None and "'shadowstream[chdb]'" in chdb
    assert missing_extra_message(ModuleNotFoundError(name="no_such_module_of_ours")) is None
