"""The producer SDK never gets in the way of the request, even with the broker down."""

from __future__ import annotations

import statistics
import time
from typing import Any

from shadowstream.pipeline.embedded import free_port
from shadowstream.producers import ShadowEmitter

CALLS = 20_000


def workload(ticket: dict[str, Any]) -> dict[str, Any]:
    return {"label": "billing", "n": sum(range(100)) + ticket["i"]}


def timed(fn: Any) -> list[float]:
    samples = []
    for i in range(CALLS):
        start = time.perf_counter()
        fn({"i": i, "text": "where is my refund"})
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=1000)[int(q * 1000) - 1]


def test_dead_broker_adds_no_latency_raises_nothing_and_counts_drops(broker: Any) -> None:
    live = ShadowEmitter(broker.url, service="svc", topic_prefix="sdk-live")
    dead = ShadowEmitter(
        f"kafka://127.0.0.1:{free_port()}",
        service="svc",
        topic_prefix="sdk-dead",
        queue_max_messages=5_000,
        message_timeout_ms=2_000,
    )
    wrapped_live = live.shadowed("/classify")(workload)
    wrapped_dead = dead.shadowed("/classify")(workload)
    timed(workload)  # warm up
    bare = timed(workload)
    with_live = timed(wrapped_live)
    with_dead = timed(wrapped_dead)  # raises nothing: the test would fail otherwise

    overhead_live = p(with_live, 0.99) - p(bare, 0.99)
    overhead_dead = p(with_dead, 0.99) - p(bare, 0.99)
    print(
        f"\np50/p99 us  bare {p(bare, 0.5):.1f}/{p(bare, 0.99):.1f}  "
        f"live {p(with_live, 0.5):.1f}/{p(with_live, 0.99):.1f}  "
        f"dead {p(with_dead, 0.5):.1f}/{p(with_dead, 0.99):.1f}"
    )
    # with the broker down the caller pays no more than with it up (small noise margin)
    assert overhead_dead <= max(overhead_live * 1.5, overhead_live + 30.0)

    live.close(10)
    dead.close(3)
    live_stats, dead_stats = live.stats(), dead.stats()
    assert live_stats.delivered == 2 * CALLS and live_stats.dropped == 0
    # every event is accounted for: dropped when the queue was full, or undeliverable
    assert dead_stats.delivered == 0
    assert dead_stats.dropped == 2 * CALLS
    assert dead_stats.dropped_queue_full > 0


def test_champion_exceptions_propagate_and_are_recorded(broker: Any) -> None:
    emitter = ShadowEmitter(broker.url, service="svc", topic_prefix="sdk-errors")

    @emitter.shadowed("/boom")
    def boom(x: int) -> int:
        raise ValueError("champion failed")

    try:
        boom(1)
    except ValueError as exc:
        assert str(exc) == "champion failed"
    else:
        raise AssertionError("the champion's exception must reach the caller")
    emitter.close(10)
    assert emitter.stats().delivered == 2


def test_a_payload_that_cannot_be_serialised_is_dropped_not_raised(broker: Any) -> None:
    emitter = ShadowEmitter(broker.url, service="svc", topic_prefix="sdk-odd")
    assert emitter.emit_request("r1", "/x", {"a": object()}) is True  # str() fallback
    assert emitter.emit_response("r1", None, float("nan"), status="nonsense") is False
    emitter.close(5)
    assert emitter.stats().dropped_invalid == 1
