"""The router's comparisons, built and encoded so that one bad pair cannot stop it.

The join engine calls the builder for every completed (or expired) pair.
Anything that goes wrong there (a builder bug, a value the ComparisonEvent
schema refuses, a comparison too large to produce) must not escape into the
engine, which would be left half-updated, or into the router, which would crash
and then crash again on the same record after a restart. :class:`GuardedBuilder`
returns the encoded comparison or a :class:`BuildFailure` saying why not; the
router dead-letters failures and the rest of the batch flows on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shadowstream.schemas import COMPARISON
from shadowstream.schemas.records import (
    ComparisonEvent,
    Outcome,
    RequestEvent,
    ResponseEvent,
)

Build = Callable[
    [RequestEvent | None, ResponseEvent | None, ResponseEvent | None, str, Outcome],
    ComparisonEvent,
]


@dataclass(frozen=True, slots=True)
class Built:
    """A comparison ready to produce (keyed by request id)."""

    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class BuildFailure:
    """A comparison that could not be built, encoded or sent, and why."""

    request_id: str
    challenger: str
    outcome: str
    error: str
    request: RequestEvent | None  # for a dead letter when no message is at hand (window expiry)

    def describe(self) -> str:
        return (
            f"{self.outcome} comparison of request {self.request_id!r} with "
            f"{self.challenger!r}: {self.error}"
        )


Emitted = Built | BuildFailure


def _request_id(*events: RequestEvent | ResponseEvent | None) -> str:
    for event in events:
        if event is not None and event.get("request_id"):
            return str(event["request_id"])
    return ""


class GuardedBuilder:
    """``build`` then encode; never raises, so the join engine always sees a result.

    ``max_bytes`` bounds an encoded comparison (the producer refuses larger
    messages): a comparison carries the request's attributes and both sides'
    error texts, which together can outgrow one message.
    """

    def __init__(self, build: Build, max_bytes: int) -> None:
        self._build = build
        self.max_bytes = max_bytes
        self.failures = 0

    def __call__(
        self,
        request: RequestEvent | None,
        champion: ResponseEvent | None,
        challenger: ResponseEvent | None,
        name: str,
        outcome: Outcome,
    ) -> Emitted:
        try:
            comparison = self._build(request, champion, challenger, name, outcome)
            value = COMPARISON.encode(comparison)
        except Exception as exc:  # any bug or bad value: this pair only
            return self._failed(request, champion, challenger, name, outcome, exc)
        if len(value) > self.max_bytes:
            error = f"the comparison takes {len(value):,} bytes, over the {self.max_bytes:,} limit"
            return self._failed(request, champion, challenger, name, outcome, error)
        return Built(str(comparison["request_id"]), value)

    def _failed(
        self,
        request: RequestEvent | None,
        champion: ResponseEvent | None,
        challenger: ResponseEvent | None,
        name: str,
        outcome: Outcome,
        error: Exception | str,
    ) -> BuildFailure:
        self.failures += 1
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        rid = _request_id(request, champion, challenger)
        return BuildFailure(rid, name, outcome, text[:400], request)
