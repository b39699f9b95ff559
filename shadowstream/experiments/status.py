"""``shadow batch status``: how far each run got, counted in ClickHouse.

Per run and challenger:

* submitted - items delivered to Kafka: recorded by the submitter
  (``experiment_submissions``), or evidently sent (a response or comparison
  exists: a submitter killed before recording its last deliveries)
* answered  - challenger responses other than ``skipped`` (``responses``; the
  comparisons where the challenger answered, if raw events are not stored)
* skipped   - answered ``skipped`` by a worker because the run was cancelled
* compared  - comparisons (``comparisons FINAL``, late arrivals excluded)
* failed    - comparisons whose challenger side errored, timed out or is missing
* diverged  - comparisons that diverged from the reference
* not routed - submitted, but the router did not send it to the challenger
  (endpoint not shadowed, e.g. a write endpoint; max_rps or budget)

The displayed status is the stored one, corrected by what the data shows: a
``running`` run whose submitter is gone (process dead, or no heartbeat for a
minute) is ``interrupted``; a ``submitted`` run with every item compared (or
not routed) for every challenger is ``completed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shadowstream.experiments.store import (
    COMPLETED,
    INCOMPLETE,
    INTERRUPTED,
    RUNNING,
    SUBMITTED,
    ExperimentRecord,
)
from shadowstream.warehouse.client import Warehouse


@dataclass
class ChallengerCounts:
    answered: int = 0
    skipped: int = 0
    compared: int = 0
    failed: int = 0
    diverged: int = 0
    not_routed: int = 0


@dataclass
class RunStatus:
    record: ExperimentRecord
    submitted: int = 0
    challengers: dict[str, ChallengerCounts] = field(default_factory=dict)

    @property
    def compared(self) -> int:
        return sum(c.compared for c in self.challengers.values())

    @property
    def expected(self) -> int:
        return self.record.total * len(self.record.challengers)

    @property
    def status(self) -> str:
        stored = self.record.status
        if stored == RUNNING and self.record.submitter_gone:
            return INTERRUPTED
        done = self.record.total > 0 and all(
            c.compared + c.not_routed >= self.record.total
            for c in (self.challengers.get(n, ChallengerCounts()) for n in self.record.challengers)
        )
        if stored in (SUBMITTED, INCOMPLETE, RUNNING, INTERRUPTED) and done:
            return COMPLETED
        return stored


def fetch_status(warehouse: Warehouse, records: Sequence[ExperimentRecord]) -> list[RunStatus]:
    if not records:
        return []
    db = warehouse.database
    ids = [r.experiment_id for r in records]
    out = {
        r.experiment_id: RunStatus(r, challengers={c: ChallengerCounts() for c in r.challengers})
        for r in records
    }
    for experiment, submitted in warehouse.query(
        f"""SELECT experiment_id, uniqExact(request_id) FROM (
            SELECT experiment_id, request_id FROM {db}.experiment_submissions
            WHERE experiment_id IN {{ids:Array(String)}}
            UNION ALL
            SELECT toString(experiment_id), request_id FROM {db}.responses
            WHERE experiment_id IN {{ids:Array(String)}}
            UNION ALL
            SELECT toString(experiment_id), request_id FROM {db}.comparisons
            WHERE experiment_id IN {{ids:Array(String)}} AND is_late = 0
        ) GROUP BY experiment_id""",
        {"ids": ids},
    ).rows:
        out[str(experiment)].submitted = int(submitted)
    for experiment, name, answered, skipped in warehouse.query(
        f"""SELECT toString(experiment_id), toString(challenger),
               uniqExactIf(request_id, status != 'skipped'),
               uniqExactIf(request_id, status = 'skipped')
        FROM {db}.responses
        WHERE experiment_id IN {{ids:Array(String)}} AND role = 'challenger'
        GROUP BY experiment_id, challenger""",
        {"ids": ids},
    ).rows:
        counts = _counts(out[str(experiment)], str(name))
        counts.answered, counts.skipped = int(answered), int(skipped)
    for experiment, name, compared, answered, failed, diverged in warehouse.query(
        f"""SELECT toString(experiment_id), toString(challenger), count(),
               countIf(challenger_status IN ('ok', 'error', 'timeout')),
               countIf(challenger_status != 'ok'), countIf(diverged = true)
        FROM {db}.comparisons FINAL
        WHERE experiment_id IN {{ids:Array(String)}} AND is_late = 0
        GROUP BY experiment_id, challenger""",
        {"ids": ids},
    ).rows:
        counts = _counts(out[str(experiment)], str(name))
        counts.compared, counts.failed, counts.diverged = int(compared), int(failed), int(diverged)
        counts.answered = max(counts.answered, int(answered))
    for experiment, name, not_routed in warehouse.query(
        f"""SELECT experiment_id, arrayJoin(names) AS challenger, count()
        FROM (
            SELECT experiment_id, request_id, argMax(not_routed, submitted_at) AS names
            FROM {db}.experiment_submissions
            WHERE experiment_id IN {{ids:Array(String)}}
            GROUP BY experiment_id, request_id
        )
        GROUP BY experiment_id, challenger""",
        {"ids": ids},
    ).rows:
        _counts(out[str(experiment)], str(name)).not_routed = int(not_routed)
    return [out[i] for i in ids]


def _counts(run: RunStatus, challenger: str) -> ChallengerCounts:
    return run.challengers.setdefault(challenger, ChallengerCounts())
