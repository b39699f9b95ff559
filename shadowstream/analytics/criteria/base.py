"""The contract of a gate criterion, and what it returns.

A criterion is one pluggable unit: ``enabled(spec)`` says whether the config
asks for it, ``judge(context)`` measures it. It never computes an interval
itself: it asks ``context.bounds`` (fixed-sample for ``shadow gate``,
anytime-valid for ``shadow watch``) at ``context.alpha``, so the same
criterion serves both. Register a new one in
:data:`shadowstream.analytics.criteria.DEFAULT_CRITERIA`.

Each criterion gets two one-sided bounds:

* **pass** when the *pessimistic* bound meets the threshold;
* **fail** when even the *optimistic* bound misses it;
* **undecided** otherwise (more data needed), **skipped** when it does not
  apply (e.g. no output format check configured).

``regressed`` is a second, stricter question with margin 0: is the challenger
confidently worse than its own baseline (champion, control or the rest of its
traffic) at all? ``shadow watch`` alarms on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shadowstream.analytics.bounds import BoundMethod
from shadowstream.analytics.model import Counts
from shadowstream.core.decision_config import GateSpec
from shadowstream.warehouse.client import QueryResult

Status = Literal["pass", "fail", "undecided", "skipped"]
Unit = Literal["count", "rate", "pct", "ms", "amount"]


@dataclass(frozen=True)
class Criterion:
    name: str
    threshold: str
    estimate: float | None
    pessimistic: float | None  # the bound that must meet the threshold to pass
    optimistic: float | None  # the bound that fails the criterion when it misses
    status: Status
    unit: Unit = "rate"
    note: str = ""
    # confidently worse than its baseline at all (margin 0): what `shadow watch` alarms on
    regressed: bool = False

    @classmethod
    def unmeasured(
        cls, name: str, threshold: str, status: Status, note: str, unit: Unit = "rate"
    ) -> Criterion:
        """A criterion with no estimate yet (undecided) or none to make (skipped)."""
        return cls(name, threshold, None, None, None, status, unit=unit, note=note)


class QueryScope(Protocol):
    """What a criterion may query (analytics.queries.Scope)."""

    def run(self, name: str, **extra: Any) -> QueryResult: ...


@dataclass(frozen=True)
class GateContext:
    """Everything a criterion may look at for one (experiment, challenger)."""

    scope: QueryScope
    counts: Counts
    spec: GateSpec
    bounds: BoundMethod
    alpha: float  # error allowed for each one-sided bound of this criterion
    control: Counts | None = None  # the challenger's own A/A control, same experiment
    control_name: str = ""
    # anytime-valid slices are tested at alpha / max(slices, slice_family): a family
    # size fixed in advance (0: the number of slices tested now, as a one-off gate does)
    slice_family: int = 0

    @property
    def has_control(self) -> bool:
        return self.control is not None and bool(self.control_name)


class GateCriterion(Protocol):
    """One pluggable check of the promotion gate."""

    name: str

    def enabled(self, spec: GateSpec) -> bool: ...

    def judge(self, context: GateContext) -> Criterion: ...


def decide(pessimistic_ok: bool, optimistic_ok: bool) -> Status:
    if pessimistic_ok:
        return "pass"
    return "undecided" if optimistic_ok else "fail"
