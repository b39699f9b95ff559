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
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.errors import BrokerError, ExperimentError
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.commands import publish_command
from shadowstream.experiments.events import Headers, reference_event, request_event, targets_header
from shadowstream.experiments.ids import request_id
from shadowstream.experiments.items import BatchItem
from shadowstream.experiments.pacing import InFlightWindow, RateLimiter
from shadowstream.experiments.planning import RunPlan, provider_challengers
from shadowstream.experiments.provider_stage import ProviderProgress, ProviderStage
from shadowstream.experiments.provider_store import ProviderBatchStore
from shadowstream.experiments.providers import BatchProvider
from shadowstream.experiments.store import (
    CANCELLED,
    COMPLETED,
    INCOMPLETE,
    INTERRUPTED,
    SUBMITTED,
    ExperimentRecord,
    ExperimentStore,
)
from shadowstream.experiments.watcher import Results, ResultWatcher
from shadowstream.schemas import REQUEST, RESPONSE, default_registry
from shadowstream.schemas.topic import follow_schema_topic
from shadowstream.schemas.wire import ANSWERED_HEADER

log = logging.getLogger(__name__)

CONTROL_PROPAGATION_S = 5.0
DEFAULT_FLOOR = 8  # in flight when the challenger's concurrency is not known here
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


class _Deliveries:
    """Request ids the broker acknowledged, handed to ClickHouse in chunks."""

    def __init__(self, requests_topic: str) -> None:
        self.topic = requests_topic
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self.failures = 0
        self.last_error = ""

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            with self._lock:
                self.failures += 1
                self.last_error = str(err)
            return
        key = msg.key()
        if msg.topic() == self.topic and key is not None:
            with self._lock:
                self._ids.append(key.decode())

    def take(self) -> list[str]:
        with self._lock:
            ids, self._ids = self._ids, []
        return ids


class BatchRunner:
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
        self._providers = providers
        window_s = settings.join_window_seconds
        self.idle_timeout_s = self.options.idle_timeout_s or window_s + 30.0
        # every request is answered, or closed by the join, within about the join window
        self.max_pending_age_s = window_s + 15.0
        self.window = InFlightWindow(
            floor=self._floor(),
            cap=self.options.max_in_flight,
            target_delay_s=min(window_s / 4, 2.0),
        )
        self.limiter = RateLimiter(self._rate())
        self.deliveries = _Deliveries(self.topics.batch_requests)
        self.submitted = 0
        self.already_done = 0
        self.phase = SUBMITTING
        self._watcher: ResultWatcher | None = None
        self._producer: Producer | None = None
        self._next = {"record": 0.0, "heartbeat": 0.0, "progress": 0.0, "reconcile": 0.0}

    # -- sizing -------------------------------------------------------------------------
    def _floor(self) -> int:
        known = {s.name: s for s in self.settings.challengers}
        floors = [max(1, known[n].concurrency // 2) for n in self.challengers if n in known]
        return min(floors) if len(floors) == len(self.challengers) else DEFAULT_FLOOR

    def _rate(self) -> float:
        """The run's rate, at most half of any challenger's max_rps (the rest is live's)."""
        rate = self.record.rate
        known = {s.name: s for s in self.settings.challengers}
        for name in self.challengers:
            if name in self.provider_names:
                continue  # answered by its batch API: no live calls to spare
            spec = known.get(name)
            if spec is not None and spec.max_rps is not None:
                rate = min(rate, spec.max_rps / 2)
        return rate

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
            self._producer = Producer(
                self.kafka.producer(
                    **{"message.timeout.ms": 60_000, "on_delivery": self.deliveries.on_delivery}
                )
            )
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
                answers: dict[str, dict[str, Any]] = {}
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
        self, rid: str, item: BatchItem, targets: list[str], answers: dict[str, dict[str, Any]]
    ) -> None:
        assert self._producer is not None and self._watcher is not None
        now_us = time.time_ns() // 1000
        if item.reference is not None:
            self._send(
                self.topics.responses,
                rid,
                RESPONSE.encode(
                    reference_event(self.record.experiment_id, rid, item.reference, now_us)
                ),
            )
        headers = targets_header(targets)
        if answers:  # answered by a provider batch: the router records them, calls nobody
            headers.append((ANSWERED_HEADER, ",".join(answers).encode()))
        self._send(
            self.topics.batch_requests,
            rid,
            REQUEST.encode(request_event(self.record.experiment_id, item, now_us)),
            headers,
        )
        for answer in answers.values():
            self._send(self.topics.responses, rid, RESPONSE.encode(answer))
        self._watcher.submitted(rid)
        self.submitted += 1

    def _send(self, topic: str, key: str, value: bytes, headers: Headers | None = None) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(topic, value, key.encode(), headers=headers)
                return
            except BufferError:  # librdkafka's queue is full: let it drain
                self._producer.poll(0.05)

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
        assert self._producer is not None and self._watcher is not None
        self._producer.poll(0)
        if self.deliveries.failures:
            raise BrokerError(
                f"{self.deliveries.failures} batch events could not be delivered "
                f"(last: {self.deliveries.last_error})"
            )
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
        ids = self.deliveries.take()
        if ids:
            await asyncio.to_thread(self.store.record_submissions, experiment, ids)
        not_routed = self._watcher.take_not_routed()
        if not_routed:
            await asyncio.to_thread(self.store.record_not_routed, experiment, not_routed)

    async def _flush(self) -> None:
        if self._producer is None:
            return
        remaining = await asyncio.to_thread(self._producer.flush, 30.0)
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

    async def _conclude(self) -> RunResult:
        await self._until_stored()
        results = self._results()
        if self.stop.is_set() and results.final < self.expected:
            return await self._finish(SUBMITTED, "stopped waiting; results keep arriving")
        if results.cancelled:
            return await self._finish(CANCELLED)
        notes = []
        if results.final > results.compared:  # finished without a comparison
            if results.unrouted:
                notes.append(
                    f"{results.unrouted:,} not sent to the challenger by the router (endpoint "
                    "not shadowed, e.g. a write endpoint, or the challenger's max_rps/budget)"
                )
            if results.skipped:
                notes.append(f"{results.skipped:,} skipped (the run was cancelled meanwhile)")
        missing = max(self.expected - results.final, 0)
        if missing:
            notes.append(
                f"{missing:,} without a result after {self.idle_timeout_s:.0f}s "
                "(--resume retries them)"
            )
            return await self._finish(INCOMPLETE, "; ".join(notes))
        return await self._finish(COMPLETED, "; ".join(notes))
