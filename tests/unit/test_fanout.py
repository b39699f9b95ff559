"""Fan-out: sampling, the side-effect guard, rate limits and budgets (with a fake clock)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shadowstream.core.config import ChallengerSpec
from shadowstream.stream_agents.fanout import ExperimentRegistry, FanOut, RollingSpend, is_sampled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spec(name: str = "c", **extra: Any) -> ChallengerSpec:
    return ChallengerSpec(name=name, callable="m:f", **extra)


def req(i: int, endpoint: str = "/predict", experiment: str = "live") -> dict[str, Any]:
    return {"request_id": f"r{i}", "endpoint": endpoint, "experiment_id": experiment}


def answer(
    tokens_in: int | None = 50,
    tokens_out: int | None = 50,
    cost: float | None = None,
    status: str = "ok",
) -> dict[str, Any]:
    return {
        "status": status,
        "usage": {
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "tool_calls": None,
            "cost": cost,
        },
    }


# -- sampling -----------------------------------------------------------------------------


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    fanout = FanOut([spec("a", sample_rate=0.1), spec("b", sample_rate=0.1), spec("all")])
    picked = [fanout.route(req(i)) for i in range(20_000)]
    a = sum("a" in p for p in picked)
    assert 1_700 < a < 2_300
    # same rate, same requests: paired results across challengers
    assert all(("a" in p) == ("b" in p) for p in picked)
    assert all("all" in p for p in picked)
    assert [is_sampled(f"r{i}", 0.1) for i in range(100)] == [
        is_sampled(f"r{i}", 0.1) for i in range(100)
    ]
    counters = fanout.counters["a"]
    assert counters.sampled == a and counters.not_sampled_rate == 20_000 - a


# -- side-effect guard --------------------------------------------------------------------


def test_write_endpoints_are_never_shadowed() -> None:
    fanout = FanOut(
        [spec("a"), spec("b", endpoints=["/orders*", "/predict"])],
        shadow_endpoints=["*"],
        write_endpoints=["/orders/*", "POST /payments*"],
    )
    assert fanout.route(req(1, "/predict")) == ["a", "b"]
    # a challenger's own endpoint list cannot re-open a write endpoint
    assert fanout.route(req(2, "/orders/create")) == []
    assert fanout.route(req(3, "POST /payments/refund")) == []
    assert fanout.route(req(4, "/orders")) == ["a", "b"]  # "/orders/*" needs a sub-path
    assert fanout.route(req(5, "/search")) == ["a"]  # not in b's endpoints
    assert fanout.counters["a"].not_sampled_endpoint == 2
    assert fanout.counters["b"].not_sampled_endpoint == 3


def test_only_endpoints_marked_safe_are_shadowed() -> None:
    fanout = FanOut([spec("a")], shadow_endpoints=["/v1/classify", "/v1/search/*"])
    assert fanout.route(req(1, "/v1/classify")) == ["a"]
    assert fanout.route(req(2, "/v1/search/docs")) == ["a"]
    assert fanout.route(req(3, "/v1/users/delete")) == []
    assert fanout.route(req(4, "")) == []  # an unnamed endpoint is not known to be safe


def test_batch_experiments_only_reach_their_challengers() -> None:
    registry = ExperimentRegistry()
    registry.apply({"type": "experiment", "experiment_id": "exp1", "challengers": ["b"]})
    fanout = FanOut([spec("a"), spec("b", sample_rate=0.0)], experiments=registry)
    assert fanout.route(req(1, experiment="exp1")) == ["b"]  # batch ignores sampling
    registry.apply({"type": "cancel", "experiment_id": "exp1"})
    assert fanout.route(req(2, experiment="exp1")) == []


# -- rate limit -----------------------------------------------------------------------------


def test_max_rps_skips_excess_requests_as_not_sampled() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", max_rps=5)], clock=clock)
    sent = 0
    for i in range(1000):  # 100 requests/s for 10 s
        clock.now += 0.01
        sent += len(fanout.route(req(i)))
    assert 50 <= sent <= 56  # 5/s plus the initial burst
    counters = fanout.counters["a"]
    assert counters.not_sampled_rps == 1000 - sent and counters.sampled == sent


def test_rate_limit_is_split_by_partition_share() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", max_rps=10)], clock=clock)
    fanout.set_share(0.5)
    sent = 0
    for i in range(1000):
        clock.now += 0.01
        sent += len(fanout.route(req(i)))
    assert 50 <= sent <= 60


# -- budget ----------------------------------------------------------------------------------


def test_token_budget_skips_as_not_sampled_budget_never_fails() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", budget={"tokens_per_hour": 1_000}), spec("free")], clock=clock)
    sent = 0
    for i in range(100):
        clock.now += 1
        if fanout.route(req(i))[:1] == ["a"]:
            sent += 1
            fanout.record_usage("a", answer(50, 50))  # 100 tokens per answer
    assert sent == 10
    counters = fanout.counters["a"]
    assert counters.not_sampled_budget == 90 and counters.sampled == 10
    assert fanout.counters["free"].sampled == 100  # other challengers unaffected
    # an hour later the window has rolled: it is sampled again
    clock.now += 3600
    assert fanout.route(req(1000)) == ["a", "free"]


def test_cost_budget() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", budget={"cost_per_hour": 0.05})], clock=clock)
    sent = 0
    for i in range(100):
        clock.now += 1
        if fanout.route(req(i)):
            sent += 1
            fanout.record_usage("a", answer(None, None, cost=0.01))
    assert sent == 5 and fanout.counters["a"].not_sampled_budget == 95


def test_requests_in_flight_are_reserved_so_a_burst_cannot_overshoot() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", budget={"tokens_per_hour": 1_000})], clock=clock)
    # before any answer the price is unknown: one request in flight
    burst = [fanout.route(req(i)) for i in range(50)]
    assert sum(map(len, burst)) == 1
    fanout.record_usage("a", answer(50, 50))  # 100 tokens
    # 900 tokens left at ~100 per answer: nine more may be in flight, not fifty
    burst = [fanout.route(req(100 + i)) for i in range(50)]
    assert sum(map(len, burst)) == 9
    for _ in range(9):
        fanout.record_usage("a", answer(50, 50))
    assert fanout.route(req(999)) == []
    spend = fanout.spend("a")
    assert spend is not None and spend.tokens == 1_000 and spend.in_flight == 0


def test_unanswered_reservations_expire_after_the_timeout() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", budget={"tokens_per_hour": 1_000}, timeout_seconds=5)], clock=clock)
    assert [len(fanout.route(req(i))) for i in range(3)] == [1, 0, 0]
    clock.now += 11  # timeout + grace: those requests will never be answered here
    assert fanout.route(req(10)) == ["a"]


def test_budget_skip_does_not_use_up_the_rate_limit() -> None:
    clock = Clock()
    fanout = FanOut([spec("a", max_rps=1, budget={"tokens_per_hour": 100})], clock=clock)
    assert fanout.route(req(0)) == ["a"]
    fanout.record_usage("a", answer(100, 0))
    clock.now += 1
    assert fanout.route(req(1)) == []
    assert fanout.counters["a"].not_sampled_budget == 1
    assert fanout.counters["a"].not_sampled_rps == 0


def test_error_responses_release_their_reservation() -> None:
    spend = RollingSpend(clock=Clock(), max_unpriced=1)
    spend.reserve()
    assert spend.over(100, None, 1.0) is True  # one unpriced request in flight
    spend.add(0, 0.0, reported=False)
    assert spend.in_flight == 0 and spend.over(100, None, 1.0) is False


@pytest.mark.parametrize("share", [0.25, 1.0])
def test_budget_is_split_by_partition_share(share: float) -> None:
    clock = Clock()
    fanout = FanOut([spec("a", budget={"tokens_per_hour": 1_000})], clock=clock)
    fanout.set_share(share)
    sent = 0
    for i in range(100):
        clock.now += 1
        if fanout.route(req(i)):
            sent += 1
            fanout.record_usage("a", answer(50, 50))
    assert sent == math.ceil(1_000 * share / 100)  # the last answer may cross the line
