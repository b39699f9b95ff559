"""``shadow watch``: re-evaluate every challenger on an interval, announce what changes.

Each check runs the promotion gate's criteria (analytics.criteria) over all
comparisons since a fixed start, with **anytime-valid** bounds (confidence
sequences, analytics.sequential) instead of fixed-sample intervals: the
verdicts stay valid however often the watch looks. The watch's alpha
(``1 - [watch] confidence``) is split evenly over the enabled criteria, and a
criterion's slices share its part (alpha / ``max_slices`` each), so a
challenger no worse than its baseline raises an alarm - a FAIL or a
regression - with probability at most alpha over the whole watch.

Two kinds of news, each recorded in ClickHouse (``watch_events``: the history)
and sent to the notifier:

* ``verdict``: the verdict changed (promote / fail / not enough data);
* ``regression``: a criterion newly shows the challenger confidently worse
  than its own baseline at all (margin 0: more divergence than its control,
  more failures than the champion, a slower p95, a slice worse than the
  control's same slice), even when the gate's thresholds still hold.

The window's start is fixed (``since``), never sliding: anytime validity is
about one growing sequence of observations. A restarted watch reads its last
recorded state back and announces only what changed since.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shadowstream.analytics.gate import GateResult, overall_exit_code, run_gate, watch_policy
from shadowstream.analytics.model import to_jsonable
from shadowstream.analytics.queries import EPOCH, FAR_FUTURE, Scope, TimeRange, check_identifier
from shadowstream.core.decision_config import GateSpec, WatchSpec
from shadowstream.core.errors import WarehouseError
from shadowstream.warehouse.client import Warehouse
from shadowstream.warehouse.commands import write_statement

log = logging.getLogger(__name__)

# registered, so the chDB owner endpoint runs it by name for a watch in another process
RECORD_WATCH_EVENT = write_statement(
    "watch.record_event",
    "INSERT INTO {db}.watch_events (at, experiment_id, challenger, kind, verdict, "
    "previous_verdict, regressions, samples, control, summary, criteria) "
    "SELECT {at:DateTime64(3, 'UTC')}, {experiment:String}, {challenger:String}, "
    "{kind:String}, {verdict:String}, {previous:String}, "
    "{regressions:Array(String)}, {samples:UInt64}, {control:String}, "
    "{summary:String}, {criteria:String}",
)

Key = tuple[str, str]  # (experiment_id, challenger)
VERDICT_LABEL = {"promote": "PROMOTE", "fail": "FAIL", "not enough data": "NOT ENOUGH DATA"}


@dataclass(frozen=True)
class WatchEvent:
    at: dt.datetime
    experiment_id: str
    challenger: str
    kind: str  # "verdict" | "regression"
    verdict: str
    previous_verdict: str  # "" the first time a challenger is seen
    regressions: tuple[str, ...]  # criteria confidently worse than the baseline now
    new_regressions: tuple[str, ...]
    samples: int
    control: str
    summary: str
    criteria: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alarm(self) -> bool:
        """A FAIL or a new regression: what someone should look at."""
        return self.verdict == "fail" or bool(self.new_regressions)

    @property
    def worth_sending(self) -> bool:
        """Everything but a first sighting that says nothing yet."""
        return bool(self.previous_verdict) or self.verdict != "not enough data" or self.alarm

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        data["alarm"] = self.alarm
        return data


@dataclass(frozen=True)
class Known:
    verdict: str
    regressions: frozenset[str]


class Notifier(Protocol):
    def send(self, events: Sequence[WatchEvent]) -> None: ...


def summarize(result: GateResult, previous: str) -> str:
    """One line: the verdict (and what it was), why, and what regressed."""
    verdict = VERDICT_LABEL[result.verdict]
    change = f"{VERDICT_LABEL.get(previous, previous)} -> {verdict}" if previous else verdict
    line = f"{result.challenger} / {result.experiment_id}: {change} (exit {result.exit_code})"
    if result.verdict == "fail":
        line += " - failed: " + "; ".join(
            f"{c.name}{f' ({c.note})' if c.note else ''}" for c in result.failed
        )
    elif result.verdict == "not enough data" and result.undecided:
        line += " - undecided: " + ", ".join(result.undecided)
    if result.regressions:
        line += " - worse than its baseline: " + ", ".join(c.name for c in result.regressions)
    return line


def diff_events(
    results: Sequence[GateResult], known: dict[Key, Known], at: dt.datetime
) -> list[WatchEvent]:
    """What changed since ``known`` (updated in place)."""
    events = []
    for result in results:
        key = (result.experiment_id, result.challenger)
        before = known.get(key)
        regressions = frozenset(c.name for c in result.regressions)
        new = regressions - (before.regressions if before else frozenset())
        known[key] = Known(result.verdict, regressions)
        changed = before is None or before.verdict != result.verdict
        if not changed and not new:
            continue
        previous = before.verdict if before else ""
        events.append(
            WatchEvent(
                at=at,
                experiment_id=result.experiment_id,
                challenger=result.challenger,
                kind="verdict" if changed else "regression",
                verdict=result.verdict,
                previous_verdict=previous,
                regressions=tuple(sorted(regressions)),
                new_regressions=tuple(sorted(new)),
                samples=result.samples,
                control=result.control,
                summary=summarize(result, previous),
                criteria=[to_jsonable(c) for c in result.criteria],
            )
        )
    return events


class Watch:
    """One continuous watch over a warehouse: ``check()`` per interval."""

    def __init__(
        self,
        warehouse: Warehouse,
        gate: GateSpec,
        spec: WatchSpec,
        controls: Sequence[str],
        *,
        challengers: Sequence[str] = (),
        configured: Sequence[str] = (),
        experiment: str = "",
        since: dt.datetime = EPOCH,
        notifier: Notifier | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.gate = gate
        self.spec = spec
        self.controls = tuple(controls)
        self.challengers = tuple(challengers)
        self.configured = tuple(configured)
        self.experiment = experiment
        self.window = TimeRange(since, FAR_FUTURE)
        self.notifier = notifier
        self.policy = watch_policy(gate, spec.confidence, spec.max_slices)
        self.known: dict[Key, Known] = {}
        self.last_results: list[GateResult] = []

    @property
    def exit_code(self) -> int:
        return overall_exit_code(self.last_results)

    def _table(self) -> str:
        return f"{check_identifier(self.warehouse.database)}.watch_events"

    def restore(self) -> int:
        """Read the last recorded verdict of every challenger; returns how many."""
        exists = self.warehouse.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = 'watch_events'",
            {"db": self.warehouse.database},
        ).scalar()
        if not exists:
            raise WarehouseError(
                f"database {self.warehouse.database!r} has no watch_events table yet: "
                "run `shadow db migrate` (the sink also migrates when it starts)"
            )
        rows = self.warehouse.query(
            f"SELECT experiment_id, challenger, argMax(verdict, at), argMax(regressions, at) "
            f"FROM {self._table()} GROUP BY experiment_id, challenger"
        ).rows
        for experiment, challenger, verdict, regressions in rows:
            self.known[(str(experiment), str(challenger))] = Known(
                str(verdict), frozenset(str(r) for r in regressions or [])
            )
        return len(rows)

    def evaluate(self) -> list[GateResult]:
        scope = Scope(self.warehouse, self.window, self.experiment)
        return run_gate(
            scope,
            self.gate,
            self.controls,
            self.challengers or None,
            self.configured,
            self.policy,
        )

    def check(self, now: dt.datetime | None = None) -> list[WatchEvent]:
        """Evaluate everything once; record and send what changed; return it."""
        at = now or dt.datetime.now(dt.UTC)
        self.last_results = self.evaluate()
        events = diff_events(self.last_results, self.known, at)
        if events:
            self.record(events)
            if self.notifier is not None:
                self.notifier.send([e for e in events if e.worth_sending])
        return events

    def record(self, events: Sequence[WatchEvent]) -> None:
        for event in events:
            self.warehouse.command(
                RECORD_WATCH_EVENT.sql(self.warehouse.database),
                {
                    "at": event.at.astimezone(dt.UTC).replace(tzinfo=None),
                    "experiment": event.experiment_id,
                    "challenger": event.challenger,
                    "kind": event.kind,
                    "verdict": event.verdict,
                    "previous": event.previous_verdict,
                    "regressions": list(event.regressions),
                    "samples": event.samples,
                    "control": event.control,
                    "summary": event.summary,
                    "criteria": json.dumps(event.criteria),
                },
            )
