"""A batch run's options, the progress it reports while it runs, and its result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shadowstream.experiments.provider_stage import ProviderProgress
from shadowstream.experiments.store import COMPLETED, INCOMPLETE, ExperimentRecord
from shadowstream.experiments.watcher import Results

# the phases of a run, as its progress reports them
SUBMITTING, WAITING, STORING, DONE = "submitting", "waiting", "storing", "done"
PROVIDER = "provider batches"


@dataclass(frozen=True)
class RunOptions:
    max_in_flight: int = 1_000
    wait: bool = True
    page_size: int = 2_000
    heartbeat_s: float = 10.0
    record_every_s: float = 1.0
    progress_every_s: float = 0.25
    idle_timeout_s: float | None = None  # default: join window + 30 s
    all_unrouted_abort: int = 50  # this many not routed and nothing answered: stop
    retry_not_routed: bool = False  # re-submit what the router left out last time
    use_batch_api: bool = True  # challengers with a batch_api answer through it


@dataclass(frozen=True)
class RunProgress:
    experiment_id: str
    phase: str
    items: int  # in the source
    already_done: int  # compared for every challenger before this run started
    submitted: int  # this run
    expected: int  # (request, challenger) pairs in the whole run
    results: Results
    in_flight_limit: int
    rate: float
    providers: tuple[ProviderProgress, ...] = ()  # the provider batches, per challenger

    @property
    def to_submit(self) -> int:
        return max(self.items - self.already_done, 0)


@dataclass(frozen=True)
class RunResult:
    record: ExperimentRecord
    progress: RunProgress

    @property
    def status(self) -> str:
        return self.record.status


ProgressCallback = Callable[[RunProgress], None]


def completion(results: Results, expected: int, idle_timeout_s: float) -> tuple[str, str]:
    """(status, message) of a run that finished waiting: completed, with a note on what
    ended without a comparison, or incomplete when results are still missing."""
    notes = []
    if results.final > results.compared:  # finished without a comparison
        if results.unrouted:
            notes.append(
                f"{results.unrouted:,} not sent to the challenger by the router (endpoint "
                "not shadowed, e.g. a write endpoint, or the challenger's max_rps/budget)"
            )
        if results.skipped:
            notes.append(f"{results.skipped:,} skipped (the run was cancelled meanwhile)")
    missing = max(expected - results.final, 0)
    if missing:
        notes.append(
            f"{missing:,} without a result after {idle_timeout_s:.0f}s (--resume retries them)"
        )
        return INCOMPLETE, "; ".join(notes)
    return COMPLETED, "; ".join(notes)
