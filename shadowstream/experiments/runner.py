"""Submit a run and follow it until every comparison is in.

1. Read what ClickHouse already has for the run (comparisons per request):
   a request already compared for every challenger is never sent again, one
   compared for some is sent only to the others (``shadow.challengers``).
2. Start the watcher (Kafka, from now on), store the run as ``running`` and
   announce it on the control topic.
3. Submit items in source order, at most ``rate`` per second and at most the
   in-flight window ahead of the results; record delivered request ids in
   ClickHouse every second; heartbeat every 10 s.
4. Wait until every (request, challenger) has a comparison or is known to
   never get one (not routed by the router, skipped because cancelled), then
   store ``completed`` (with a note on those without a comparison); if
   nothing happens for ``idle_timeout_s`` before that, ``incomplete``.

Challengers with a ``batch_api`` get their answers from provider batches
first (:mod:`shadowstream.experiments.provider_stage`: create, poll until
ended); their answers then travel with the requests (step 3), and the join
compares them like any other. ``--no-wait`` returns once the provider
batches exist; ``--resume`` collects them.

Stopping (``stop`` event, e.g. Ctrl-C, or cancelling the task) flushes what
was produced, records it, and stores ``interrupted``; a cancel command for
the run stores ``cancelled``. Resuming submits every item without a
comparison yet: those still in flight are dropped by the join as duplicates
(same request id), so nothing is compared twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

from shadowstream.core.errors import ExperimentError
from shadowstream.experiments.commands import publish_command
from shadowstream.experiments.ids import request_id
from shadowstream.experiments.items import BatchItem
from shadowstream.experiments.provider_stage import ProviderStage
from shadowstream.experiments.provider_store import ProviderBatchStore
from shadowstream.experiments.run_state import RunState
from shadowstream.experiments.run_types import (
    PROVIDER,
    SUBMITTING,
    WAITING,
    ProgressCallback,
    RunOptions,
    RunProgress,
    RunResult,
    completion,
)
from shadowstream.experiments.store import (
    CANCELLED,
    INTERRUPTED,
    SUBMITTED,
)
from shadowstream.experiments.submission import Submission
from shadowstream.experiments.watcher import Results, ResultWatcher
from shadowstream.schemas import REQUEST, RESPONSE, default_registry
from shadowstream.schemas.records import ResponseEvent
from shadowstream.schemas.topic import follow_schema_topic

log = logging.getLogger(__name__)

__all__ = ["BatchRunner", "ProgressCallback", "RunOptions", "RunProgress", "RunResult"]

CONTROL_PROPAGATION_S = 5.0


class BatchRunner(RunState):
    """Runs one batch run: the baseline, the announcement, the provider batches, the
    submission, the wait for results (see the module's description)."""

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        # watch first, then read the baseline: a comparison is seen on Kafka or is stored
        watcher = self._watcher = ResultWatcher(
            self.kafka, self.topics, self.record.experiment_id, self.challengers
        )
        # publish the schemas this run writes; read comparisons of any version
        schemas = await asyncio.to_thread(
            follow_schema_topic,
            self.kafka.base(),
            self.topics.schemas,
            default_registry(),
            [REQUEST.schema, RESPONSE.schema],
            lookup_wait_s=self.settings.schema_lookup_wait_seconds,
        )
        await asyncio.to_thread(watcher.start)
        try:
            baseline = await self._baseline()
            complete = {rid for rid, names in baseline.items() if set(self.challengers) <= names}
            self.already_done = len(complete)
            self.record = await asyncio.to_thread(self.store.save, self.record)
            await asyncio.to_thread(
                publish_command,
                self.kafka,
                self.topics.control,
                {
                    "type": "experiment",
                    "experiment_id": self.record.experiment_id,
                    "challengers": self.challengers,
                },
            )
            if self.plan.was_cancelled:
                # routers and workers poll the control topic about every second; until
                # they have read the announcement they would still skip the run
                await asyncio.sleep(CONTROL_PROPAGATION_S)
            self._submission = Submission(self.kafka, self.topics, self.record.experiment_id)
            if self.provider_names:
                ended = await self._provider_phase(baseline)
                if ended is not None:
                    return ended
            finished = await self._submit(baseline)
            await self._flush()
            if not finished:
                return await self._finish(CANCELLED if watcher.results().cancelled else INTERRUPTED)
            if not self.options.wait:
                return await self._finish(SUBMITTED)
            self.phase = WAITING
            await self._wait()
            return await self._conclude()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._abort("the run's task was cancelled"))
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._abort(str(exc)))
            raise
        finally:
            watcher.stop()
            default_registry().detach(schemas)
            schemas.close()

    async def _baseline(self) -> dict[str, frozenset[str]]:
        """Per request, the challengers with nothing left to do: compared, or (unless
        retrying them) left out by the router last time."""
        assert self._watcher is not None
        experiment = self.record.experiment_id
        compared = await asyncio.to_thread(self.store.compared_challengers, experiment)
        self._watcher.record_compared(compared)
        if self.options.retry_not_routed:
            return compared
        not_routed = await asyncio.to_thread(self.store.not_routed_challengers, experiment)
        self._watcher.record_not_routed(not_routed)
        done = dict(compared)
        for rid, names in not_routed.items():
            done[rid] = done.get(rid, frozenset()) | names
        return done

    async def _provider_phase(self, baseline: dict[str, frozenset[str]]) -> RunResult | None:
        """Create the provider batches still missing and wait until all ended; a result
        when the run stops here (stopped, cancelled, or --no-wait)."""
        self.phase = PROVIDER
        store = ProviderBatchStore(self.store.warehouse)
        if not await asyncio.to_thread(store.has_table):
            raise ExperimentError(
                "ClickHouse has no table for provider batches yet: run `shadow db migrate` "
                "(or restart the pipeline, whose sink migrates)"
            )
        experiment = self.record.experiment_id
        self.stage = stage = ProviderStage(
            self.settings, store, experiment, self.provider_names, self._providers
        )
        created = await asyncio.to_thread(stage.prepare, self.plan.source, baseline)
        log.info("run %s: %d provider batches created", experiment, created)
        if not self.options.wait:
            return await self._finish(
                INTERRUPTED,
                f"provider batches submitted ({created} new); collect their results with "
                f"--resume {experiment}",
            )
        while not await asyncio.to_thread(stage.poll):
            await self._periodic()
            if self._results().cancelled:
                await asyncio.to_thread(stage.cancel)
                return await self._finish(CANCELLED, "the provider batches were cancelled too")
            if self.stop.is_set():
                return await self._finish(
                    INTERRUPTED,
                    f"stopped while the provider batches run (they go on): --resume {experiment} "
                    "collects them",
                )
            await asyncio.sleep(0.2)
        assert self._watcher is not None
        self._watcher.touch()  # the wait is not the pipeline's idleness
        self.phase = SUBMITTING
        return None

    async def _submit(self, baseline: dict[str, frozenset[str]]) -> bool:
        """Send every item not compared yet; False when stopped or cancelled first."""
        pages: Iterator[list[BatchItem]] = self.plan.source.pages(self.options.page_size)
        experiment = self.record.experiment_id
        seen = 0
        while True:
            page = await asyncio.to_thread(next, pages, None)
            if page is None:
                await self._settle_total(seen)
                return True
            for item in page:
                ordinal, seen = seen, seen + 1
                rid = request_id(experiment, item.source_id)
                done = baseline.get(rid, frozenset())
                targets = [c for c in self.challengers if c not in done]
                if not targets:
                    continue
                answers: dict[str, ResponseEvent] = {}
                if self.stage is not None and any(t in self.stage.targets for t in targets):
                    answers = await asyncio.to_thread(
                        self.stage.answers, ordinal, rid, item, targets
                    )
                if not await self._wait_for_room():
                    return False
                self._produce(rid, item, targets, answers)

    async def _settle_total(self, seen: int) -> None:
        """The run is the items read: captured traffic of the last seconds may still have
        been arriving in ClickHouse when the source was counted."""
        if seen != self.record.total:
            log.info(
                "run %s: %d items read, %d counted",
                self.record.experiment_id,
                seen,
                self.record.total,
            )
            self.record = await asyncio.to_thread(
                self.store.save, self.record.with_status(self.record.status, total=seen)
            )

    def _produce(
        self, rid: str, item: BatchItem, targets: list[str], answers: dict[str, ResponseEvent]
    ) -> None:
        assert self._submission is not None and self._watcher is not None
        self._submission.produce(rid, item, targets, answers)
        self._watcher.submitted(rid)
        self.submitted += 1

    async def _wait_for_room(self) -> bool:
        """Pace the next request (rate and in-flight window); False to stop submitting."""
        while True:
            await self._periodic()
            results = self._results()
            if self.stop.is_set() or results.cancelled:
                return False
            self._check_routing(results)
            limit = self.window.limit(results.answer_rate)
            if results.in_flight < limit and self.limiter.try_take():
                return True
            if results.in_flight >= limit and results.idle_s > 2.0:
                await self._maybe_reconcile()
            if results.in_flight >= limit and results.idle_s > self.idle_timeout_s:
                raise ExperimentError(
                    f"no result for {results.idle_s:.0f}s with {results.in_flight} requests in "
                    "flight: is the pipeline (router, challenger workers) running? "
                    f"Continue later with --resume {self.record.experiment_id}"
                )
            await asyncio.sleep(min(0.05, max(0.002, self.limiter.wait_time())))

    def _check_routing(self, results: Results) -> None:
        if results.unrouted >= self.options.all_unrouted_abort and not (
            results.answered or results.skipped or results.compared
        ):
            raise ExperimentError(
                f"the router sent none of the first {results.unrouted} requests to "
                f"{', '.join(self.challengers)}: does the pipeline's config list the challenger, "
                "and allow these endpoints (shadow_endpoints, write_endpoints, the challenger's "
                "endpoints)? Is its max_rps or budget exhausted?"
            )

    async def _wait(self) -> None:
        expected = self.expected
        while True:
            await self._periodic()
            results = self._results()
            if results.final >= expected or self.stop.is_set() or results.cancelled:
                return
            if results.idle_s > 2.0:
                await self._maybe_reconcile()
            if results.idle_s > self.idle_timeout_s:
                return
            await asyncio.sleep(0.1)

    async def _maybe_reconcile(self) -> None:
        """Comparisons stored while this process was not watching (e.g. before a resume).

        A request re-submitted while its first submission was being compared is
        dropped by the join as a duplicate: its comparison is in ClickHouse only.
        """
        if time.monotonic() < self._next["reconcile"]:
            return
        self._next["reconcile"] = time.monotonic() + 5.0
        assert self._watcher is not None
        compared = await asyncio.to_thread(
            self.store.compared_challengers, self.record.experiment_id
        )
        self._watcher.record_compared(compared)

    async def _conclude(self) -> RunResult:
        await self._until_stored()
        results = self._results()
        if self.stop.is_set() and results.final < self.expected:
            return await self._finish(SUBMITTED, "stopped waiting; results keep arriving")
        if results.cancelled:
            return await self._finish(CANCELLED)
        status, message = completion(results, self.expected, self.idle_timeout_s)
        return await self._finish(status, message)
