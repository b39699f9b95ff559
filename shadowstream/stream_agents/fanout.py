"""Fan-out: decide which challengers a request goes to.

In order, per challenger:

1. experiment: live requests go to every challenger; a batch experiment's
   requests only to the challengers the experiment names (cancelled runs: none);
2. side-effect guard: the endpoint must match ``shadow_endpoints`` and none of
   ``write_endpoints``, and the challenger's own ``endpoints`` globs;
3. sampling: deterministic by request_id (the same request is always in or
   out; challengers at the same rate see the same requests, so their results
   are paired);
4. budget (tokens / cost per rolling hour, requests in flight reserved at the
   average spend of recent answers) and rate limit (``max_rps``), which skip
   the request and count it as "not sampled (budget)" / "not sampled (rps)",
   never as a failure.

Limits are global: each router instance enforces its share of them (the
share of partitions it owns, see :meth:`FanOut.set_share`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.core.endpoints import endpoint_matches
from shadowstream.schemas.records import RequestEvent, ResponseEvent

_TWO_64 = float(1 << 64)
_NO_USAGE: dict[str, Any] = {}


def sample_point(request_id: str) -> float:
    """A request's position in [0, 1): stable across processes and restarts."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _TWO_64


def is_sampled(request_id: str, rate: float) -> bool:
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return sample_point(request_id) < rate


class TokenBucket:
    """requests/s limiter; ``share`` scales it to this instance's part of the partitions.

    Bursts up to one second's worth of requests (at least one).
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.share = 1.0
        self._clock = clock
        self._tokens = max(rate, 1.0)
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        rate = self.rate * self.share
        self._tokens = min(max(rate, 1.0), self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class RollingSpend:
    """Tokens and cost of one challenger in the last hour, and what is still on its way.

    Spend is known only when a challenger's response comes back, so a burst of
    requests could overshoot the budget long before the first bill arrives.
    Each request sent is therefore *reserved* at the average spend of recent
    answers until its own response settles it (or ``pending_ttl_s`` passes: a
    timeout, or a response that went to another instance). Before any answer
    has reported usage, at most ``max_unpriced`` requests are in flight.
    """

    def __init__(
        self,
        window_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        pending_ttl_s: float = 60.0,
        max_unpriced: int = 1,
    ) -> None:
        self.window_s = window_s
        self.pending_ttl_s = pending_ttl_s
        self.max_unpriced = max(1, max_unpriced)
        self._clock = clock
        self._events: deque[tuple[float, int, float]] = deque()
        self._pending: deque[float] = deque()
        self.tokens = 0
        self.cost = 0.0
        self.avg_tokens: float | None = None  # per answer, exponentially weighted
        self.avg_cost: float | None = None
        self.answers = 0

    def reserve(self) -> None:
        """A request was sent: count it at the expected spend until it is answered."""
        self._pending.append(self._clock())

    def add(self, tokens: int, cost: float, *, reported: bool = True) -> None:
        """A response arrived; ``reported`` says whether it carried usage at all."""
        self.answers += 1
        if self._pending:
            self._pending.popleft()
        if reported:
            self.avg_tokens = _ewma(self.avg_tokens, tokens)
            self.avg_cost = _ewma(self.avg_cost, cost)
        if tokens or cost:
            self._events.append((self._clock(), tokens, cost))
            self.tokens += tokens
            self.cost += cost

    def _trim(self) -> None:
        now = self._clock()
        cutoff = now - self.window_s
        while self._events and self._events[0][0] < cutoff:
            _, tokens, cost = self._events.popleft()
            self.tokens -= tokens
            self.cost -= cost
        if not self._events:  # no float drift once the window is empty
            self.tokens, self.cost = 0, 0.0
        stale = now - self.pending_ttl_s
        while self._pending and self._pending[0] < stale:
            self._pending.popleft()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def over(self, tokens_limit: int | None, cost_limit: float | None, share: float) -> bool:
        self._trim()
        pending = len(self._pending)
        if not self.answers and pending >= self.max_unpriced:
            return True  # nothing known about the price yet: do not flood
        if tokens_limit is not None:
            expected = self.tokens + pending * (self.avg_tokens or 0.0)
            if expected >= tokens_limit * share:
                return True
        if cost_limit is not None:
            expected_cost = self.cost + pending * (self.avg_cost or 0.0)
            if expected_cost >= cost_limit * share:
                return True
        return False


def _ewma(previous: float | None, value: float, alpha: float = 0.1) -> float:
    return float(value) if previous is None else previous + alpha * (value - previous)


@dataclass
class ChallengerCounters:
    sampled: int = 0
    not_sampled_rate: int = 0
    not_sampled_endpoint: int = 0
    not_sampled_rps: int = 0
    not_sampled_budget: int = 0
    not_sampled_experiment: int = 0


@dataclass
class ExperimentRegistry:
    """Batch experiments known from the control topic: id -> challengers, cancelled flag."""

    challengers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    def apply(self, command: dict[str, Any]) -> None:
        experiment = str(command.get("experiment_id", ""))
        if not experiment:
            return
        if command.get("type") == "experiment":
            self.challengers[experiment] = tuple(command.get("challengers") or ())
            if command.get("cancelled"):
                self.cancelled.add(experiment)
            else:
                self.cancelled.discard(experiment)
        elif command.get("type") == "cancel":
            self.cancelled.add(experiment)


class FanOut:
    """``route(request) -> [challenger names]``; counts every decision per challenger."""

    def __init__(
        self,
        challengers: Sequence[ChallengerSpec],
        *,
        shadow_endpoints: Sequence[str] = ("*",),
        write_endpoints: Sequence[str] = (),
        experiments: ExperimentRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.specs = list(challengers)
        self.shadow_endpoints = tuple(shadow_endpoints)
        self.write_endpoints = tuple(write_endpoints)
        self.experiments = experiments or ExperimentRegistry()
        self.counters = {s.name: ChallengerCounters() for s in self.specs}
        self._buckets = {
            s.name: TokenBucket(s.max_rps, clock) for s in self.specs if s.max_rps is not None
        }
        self._spend = {
            s.name: RollingSpend(clock=clock, pending_ttl_s=s.timeout_seconds + 5.0)
            for s in self.specs
            if s.budget
        }
        self._share = 1.0
        self._endpoint_cache: dict[tuple[str, str], bool] = {}

    def set_share(self, share: float) -> None:
        """This instance's share of the partitions (limits are global, split evenly)."""
        self._share = max(min(share, 1.0), 0.0)
        for bucket in self._buckets.values():
            bucket.share = self._share

    def _endpoint_allowed(self, spec: ChallengerSpec, endpoint: str) -> bool:
        key = (spec.name, endpoint)
        allowed = self._endpoint_cache.get(key)
        if allowed is None:
            allowed = (
                endpoint_matches(endpoint, self.shadow_endpoints)
                and not endpoint_matches(endpoint, self.write_endpoints)
                and endpoint_matches(endpoint, spec.endpoints)
            )
            if len(self._endpoint_cache) < 10_000:
                self._endpoint_cache[key] = allowed
        return allowed

    def record_usage(self, challenger: str, response: ResponseEvent) -> None:
        """Feed a challenger's response into its budget (every response, errors too)."""
        spend = self._spend.get(challenger)
        if spend is None:
            return
        usage: Mapping[str, Any] = response.get("usage") or _NO_USAGE
        tokens_in, tokens_out, cost = (
            usage.get("tokens_in"),
            usage.get("tokens_out"),
            usage.get("cost"),
        )
        reported = tokens_in is not None or tokens_out is not None or cost is not None
        # a negative count or a NaN/infinite cost is no spend: it would otherwise stay in
        # the rolling sums (and a NaN in the average) and switch the budget off or on
        tokens = max(int(tokens_in or 0), 0) + max(int(tokens_out or 0), 0)
        spent = float(cost) if cost is not None and math.isfinite(cost) and cost > 0 else 0.0
        spend.add(tokens, spent, reported=reported)

    def spend(self, challenger: str) -> RollingSpend | None:
        """The rolling spend of a challenger with a budget (for metrics and tests)."""
        return self._spend.get(challenger)

    def route(
        self,
        request: RequestEvent,
        targets: Sequence[str] | None = None,
        answered: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Challengers this request goes to.

        ``targets`` names the challengers of a batch request (sent along with
        it); without it, the experiment registry is asked. ``answered`` names
        those whose answer comes with the request (a provider batch API already
        ran it): no budget or rate limit applies to them, the money is spent.
        Batch-only challengers (no live adapter) get no live traffic.
        """
        experiment = request.get("experiment_id") or "live"
        rid: str = request["request_id"]
        endpoint: str = request.get("endpoint", "")
        batch = experiment != "live"
        if batch:
            if targets is None:
                targets = self.experiments.challengers.get(experiment)
            if experiment in self.experiments.cancelled:
                targets = ()
        point: float | None = None
        asked: list[str] = []
        for spec in self.specs:
            counters = self.counters[spec.name]
            if batch and (targets is None or spec.name not in targets):
                counters.not_sampled_experiment += 1
                continue
            if not self._endpoint_allowed(spec, endpoint):
                counters.not_sampled_endpoint += 1
                continue
            if not batch and not spec.live:
                counters.not_sampled_rate += 1  # batch-only: its batch API, never live calls
                continue
            if spec.name in answered:
                counters.sampled += 1
                asked.append(spec.name)
                continue
            if not batch and spec.sample_rate < 1.0:
                if point is None:
                    point = sample_point(rid)
                if point >= spec.sample_rate:
                    counters.not_sampled_rate += 1
                    continue
            # budget before rate: a request skipped for budget must not use up a token
            spend = self._spend.get(spec.name)
            if (
                spend is not None
                and spec.budget is not None
                and spend.over(spec.budget.tokens_per_hour, spec.budget.cost_per_hour, self._share)
            ):
                counters.not_sampled_budget += 1
                continue
            bucket = self._buckets.get(spec.name)
            if bucket is not None and not bucket.allow():
                counters.not_sampled_rps += 1
                continue
            if spend is not None:
                spend.reserve()
            counters.sampled += 1
            asked.append(spec.name)
        return asked
