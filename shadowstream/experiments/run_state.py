"""What a batch run has done so far, and how it keeps account of it.

The run's record in ClickHouse (heartbeat every few seconds, the status at the
end), the request ids the broker acknowledged and the requests the router left
out (recorded every second), and the progress it reports. The orchestration is
:class:`shadowstream.experiments.runner.BatchRunner`, built on this.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.errors import BrokerError
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.pacing import InFlightWindow, RateLimiter, in_flight_floor, run_rate
from shadowstream.experiments.planning import RunPlan, provider_challengers
from shadowstream.experiments.provider_stage import ProviderStage
from shadowstream.experiments.providers import BatchProvider
from shadowstream.experiments.run_types import (
    DONE,
    STORING,
    SUBMITTING,
    ProgressCallback,
    RunOptions,
    RunProgress,
    RunResult,
)
from shadowstream.experiments.store import CANCELLED, INTERRUPTED, ExperimentStore
from shadowstream.experiments.submission import Submission
from shadowstream.experiments.watcher import Results, ResultWatcher

DEFAULT_FLOOR = 8  # in flight when the challenger's concurrency is not known here


class RunState:
    """A run's counts, pacing, record and reporting, shared by its phases."""

    def __init__(
        self,
        settings: Settings,
        store: ExperimentStore,
        plan: RunPlan,
        options: RunOptions | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        stop: asyncio.Event | None = None,
        providers: Mapping[str, BatchProvider] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.plan = plan
        self.options = options or RunOptions()
        self.on_progress = on_progress
        self.stop = stop or asyncio.Event()
        self.kafka = kafka_client_config(settings)
        self.topics = TopicNames(settings.topic_prefix)
        self.record = plan.record
        self.challengers = list(plan.record.challengers)
        self.provider_names = provider_challengers(
            settings, self.challengers, self.options.use_batch_api
        )
        self.stage: ProviderStage | None = None
        self._providers = providers  # provider clients by challenger (default: from config)
        window_s = settings.join_window_seconds
        self.idle_timeout_s = self.options.idle_timeout_s or window_s + 30.0
        # every request is answered, or closed by the join, within about the join window
        self.max_pending_age_s = window_s + 15.0
        self.window = InFlightWindow(
            floor=in_flight_floor(settings, self.challengers, DEFAULT_FLOOR),
            cap=self.options.max_in_flight,
            target_delay_s=min(window_s / 4, 2.0),
        )
        self.limiter = RateLimiter(
            run_rate(settings, self.challengers, self.provider_names, self.record.rate)
        )
        self.submitted = 0
        self.already_done = 0
        self.phase = SUBMITTING
        self._watcher: ResultWatcher | None = None
        self._submission: Submission | None = None  # the run's producer, once it submits
        self._next = {"record": 0.0, "heartbeat": 0.0, "progress": 0.0, "reconcile": 0.0}

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def expected(self) -> int:
        return self.record.total * len(self.challengers)

    def _results(self) -> Results:
        assert self._watcher is not None
        return self._watcher.results()

    def progress(self) -> RunProgress:
        results = self._results()
        return RunProgress(
            experiment_id=self.record.experiment_id,
            phase=self.phase,
            items=self.record.total,
            already_done=self.already_done,
            submitted=self.submitted,
            expected=self.expected,
            results=results,
            in_flight_limit=self.window.limit(results.answer_rate),
            rate=self.limiter.rate,
            providers=self.stage.progress() if self.stage is not None else (),
        )

    async def _periodic(self) -> None:
        assert self._submission is not None and self._watcher is not None
        self._submission.check()
        now = time.monotonic()
        if now >= self._next["progress"]:
            self._next["progress"] = now + self.options.progress_every_s
            self._watcher.expire_pending(self.max_pending_age_s)
            if self.on_progress is not None:
                self.on_progress(self.progress())
        if now >= self._next["record"]:
            self._next["record"] = now + self.options.record_every_s
            await self._record_submissions()
        if now >= self._next["heartbeat"]:
            self._next["heartbeat"] = now + self.options.heartbeat_s
            self.record = await asyncio.to_thread(self.store.save, self.record)

    async def _record_submissions(self) -> None:
        assert self._watcher is not None
        experiment = self.record.experiment_id
        ids = self._submission.deliveries.take() if self._submission is not None else []
        if ids:
            await asyncio.to_thread(self.store.record_submissions, experiment, ids)
        not_routed = self._watcher.take_not_routed()
        if not_routed:
            await asyncio.to_thread(self.store.record_not_routed, experiment, not_routed)

    async def _flush(self) -> None:
        if self._submission is None:
            return
        remaining = await asyncio.to_thread(self._submission.flush, 30.0)
        await self._record_submissions()
        if remaining:
            raise BrokerError(f"{remaining} batch events still undelivered after 30s")

    async def _finish(self, status: str, message: str = "") -> RunResult:
        self.phase = DONE
        await self._record_submissions()
        self.record = await asyncio.to_thread(
            self.store.save, self.record.with_status(status, message)
        )
        progress = self.progress()
        if self.on_progress is not None:
            self.on_progress(progress)
        return RunResult(self.record, progress)

    async def _abort(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._flush()
        results = self._results()
        status = CANCELLED if results.cancelled else INTERRUPTED
        await self._finish(status, reason[:500])

    async def _until_stored(self, timeout_s: float = 30.0) -> None:
        """Let the sink store what the join emitted, so reports see the whole run."""
        self.phase = STORING
        wanted = self._results().compared
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.stop.is_set():
            stored = await asyncio.to_thread(
                self.store.stored_comparisons, self.record.experiment_id
            )
            if stored >= wanted:
                return
            await self._periodic()
            await asyncio.sleep(0.25)
