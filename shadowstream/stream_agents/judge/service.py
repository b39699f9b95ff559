"""The judge agent: LLM verdicts for the pairs the router left to the judge.

It consumes ``<prefix>.judge`` (one JSON job per pair: the comparison as the
router emitted it, the input and both answers, the cache key), and for each:

1. a cached verdict for the same judge, rubric, input and answers: used as is;
2. over the judge's budget (tokens/cost per rolling hour): ``skipped``;
3. otherwise the model is asked in both orders (:class:`JudgeClient`).

The comparison is then re-emitted to ``<prefix>.comparisons`` with
``judge_verdict`` / ``judge_rationale`` and a later ``compared_at``, so
ClickHouse keeps the judged version (the rollups count the first copy; the
judge does not change divergence). Offsets are committed only up to the oldest
job in flight, after its outputs were delivered: a restart re-judges at most
the jobs in flight, from the cache where it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import orjson
from confluent_kafka import Message, TopicPartition

from shadowstream.core.challenger_config import JudgeSpec
from shadowstream.core.errors import SchemaError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.runtime.agent import AgentService
from shadowstream.runtime.kafka_io import BatchConsumer, DeadLetters, OffsetTracker, OutputProducer
from shadowstream.runtime.stats import StatsReporter
from shadowstream.schemas import COMPARISON
from shadowstream.stream_agents.judge.cache import VerdictCache, encode_entry, restore
from shadowstream.stream_agents.judge.client import JudgeClient, JudgeOutcome
from shadowstream.stream_agents.judge.jobs import JudgeJob
from shadowstream.stream_agents.judge.prompt import DECIDED, SKIPPED

log = logging.getLogger(__name__)

COUNTERS = (
    "jobs",
    "judged",
    "cache_hits",
    "skipped_budget",
    "errors",
    "malformed_answers",
    "calls",
    "tokens_in",
    "tokens_out",
    "cost_micro",
)


class JudgeService(AgentService):
    agent_name = "judge"

    def __init__(
        self,
        *,
        kafka: KafkaClientConfig,
        topics: TopicNames,
        judges: Mapping[str, JudgeSpec],
        partitions: int,
        clients: Mapping[str, JudgeClient] | None = None,
        commit_interval_s: float = 1.0,
        stats_interval_s: float = 10.0,
        poll_timeout_s: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.topics = topics
        self.judges = dict(judges)
        self.partitions = partitions
        self._given_clients = dict(clients or {})
        self.commit_interval_s = commit_interval_s
        self.stats_interval_s = stats_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.max_in_flight = max(1, sum(s.concurrency for s in self.judges.values()))
        self.tracker = OffsetTracker()
        self.cache = VerdictCache(max((s.cache_size for s in self.judges.values()), default=0))
        self.counters: dict[str, dict[str, int]] = {
            name: dict.fromkeys(COUNTERS, 0) for name in self.judges
        }
        self._judging: set[asyncio.Future[None]] = set()
        self._in_flight = 0
        self._share = 1.0
        self._next_commit = 0.0
        self._next_stats = time.monotonic() + stats_interval_s

    # -- lifecycle --------------------------------------------------------------------
    async def setup(self) -> None:
        self.clients = {
            name: self._given_clients.get(name)
            or JudgeClient(spec, f"judge of challenger {name!r}")
            for name, spec in self.judges.items()
        }
        self._slots = {
            name: asyncio.Semaphore(spec.concurrency) for name, spec in self.judges.items()
        }
        self.producer = OutputProducer(self.kafka.producer(), "judge")
        self.deadletters = DeadLetters(self.producer, self.topics.deadletter, "judge")
        self.stats = StatsReporter(self.producer, self.topics.stats, "judge")
        restored = await asyncio.to_thread(restore, self.cache, self.kafka, self.topics.judge_cache)
        log.info("judge: %d cached verdicts restored", restored)
        self.consumer = BatchConsumer(
            self.kafka.consumer(self.topics.judge_group),
            [self.topics.judge],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            name="judge",
        )

    async def teardown(self) -> None:
        if self._judging:
            _, pending = await asyncio.wait(self._judging, timeout=5.0)
            for task in pending:
                task.cancel()
        self.stats.report(self.counters)
        try:
            snapshot = self.tracker.committable()
            await self.producer.flush(timeout=10)
            await self.consumer.commit(snapshot)
        except Exception as exc:
            log.warning("judge: final commit failed (%s)", exc)
        await self.consumer.close()
        self.producer.close()
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.close()

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self._share = len(self.consumer.assignment) / max(self.partitions, 1)
        self.mark_ready()

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        kept = len(self.consumer.assignment - revoked)
        self._share = kept / max(self.partitions, 1)
        try:
            snapshot = [
                tp for tp in self.tracker.committable() if (tp.topic, tp.partition) in revoked
            ]
            self.producer.flush_sync(timeout=30)
            self.consumer.commit_sync(snapshot)
        except Exception as exc:
            log.warning("judge: commit on revoke failed (%s)", exc)
        for tp in partitions:
            self.tracker.forget(tp.topic, tp.partition)

    # -- main loop ------------------------------------------------------------------------
    async def step(self) -> None:
        room = self.max_in_flight - self._in_flight
        if room > 0:
            for msg in await self.consumer.poll(min(room, 500), self.poll_timeout_s):
                self._handle(msg)
        else:
            await asyncio.sleep(self.poll_timeout_s)
            await self.consumer.poll(0, 0)  # keep the group membership alive
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval_s
            self.stats.report(self.counters)
        if now >= self._next_commit:
            self._next_commit = now + self.commit_interval_s
            snapshot = self.tracker.committable()
            await self.producer.flush()
            await self.consumer.commit(snapshot)
        self.producer.poll()

    def _handle(self, msg: Message) -> None:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        job = self._job(msg)
        name = str(job["comparison"].get("challenger", "")) if job else ""
        client = self.clients.get(name)
        if job is None or client is None:
            if job is not None:
                self.deadletters.send(msg, "no_judge", f"no judge configured for {name!r}")
            self.tracker.skip(topic, partition, offset)
            return
        counters = self.counters[name]
        counters["jobs"] += 1
        cached = self.cache.get(job["key"])
        if cached is not None:
            counters["cache_hits"] += 1
            self._emit(msg, job, *cached)
            self.tracker.skip(topic, partition, offset)
            return
        if not client.admit(self._share):
            counters["skipped_budget"] += 1
            budget = client.spec.budget
            self._emit(msg, job, SKIPPED, f"not judged: over the judge's budget ({budget})")
            self.tracker.skip(topic, partition, offset)
            return
        self.tracker.start(topic, partition, offset)
        self._in_flight += 1
        task = asyncio.ensure_future(self._judge(msg, job, name, client))
        self._judging.add(task)
        task.add_done_callback(self._judging.discard)

    def _job(self, msg: Message) -> JudgeJob | None:
        try:
            job = orjson.loads(msg.value() or b"")
            comparison = job["comparison"]
            for field in ("input", "champion", "challenger", "key"):
                if not isinstance(job[field], str):
                    raise TypeError(f"{field} is not a string")
            if not isinstance(comparison, dict) or not comparison.get("request_id"):
                raise TypeError("comparison without a request id")
            return cast(JudgeJob, dict(job))  # checked above: a JSON object of that shape
        except (ValueError, KeyError, TypeError) as exc:
            self.deadletters.send(msg, "invalid", f"judge job: {exc}")
            return None

    async def _judge(self, msg: Message, job: JudgeJob, name: str, client: JudgeClient) -> None:
        counters = self.counters[name]
        try:
            async with self._slots[name]:
                outcome = await client.judge(job["input"], job["champion"], job["challenger"])
            self._count(counters, outcome)
            if outcome.verdict in DECIDED:
                self.cache.put(job["key"], outcome.verdict, outcome.rationale)
                self.producer.produce(
                    self.topics.judge_cache,
                    encode_entry(outcome.verdict, outcome.rationale),
                    job["key"],
                )
            self._emit(msg, job, outcome.verdict, outcome.rationale)
        except Exception as exc:  # never lose the offset: record the failure with the pair
            log.exception("judge: unexpected failure")
            counters["errors"] += 1
            self._emit(msg, job, "error", f"judge agent: {type(exc).__name__}: {exc}"[:300])
        finally:
            self.tracker.finish(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
            self._in_flight -= 1

    @staticmethod
    def _count(counters: dict[str, int], outcome: JudgeOutcome) -> None:
        counters["judged"] += 1
        counters["errors"] += outcome.verdict == "error"
        counters["malformed_answers"] += outcome.malformed
        counters["calls"] += outcome.calls
        counters["tokens_in"] += outcome.tokens_in
        counters["tokens_out"] += outcome.tokens_out
        counters["cost_micro"] += round(outcome.cost * 1_000_000)

    def _emit(self, msg: Message, job: JudgeJob, verdict: str, rationale: str) -> None:
        comparison = job["comparison"].copy()
        comparison["judge_verdict"] = verdict
        comparison["judge_rationale"] = rationale
        # later than the router's copy: ClickHouse keeps this version
        comparison["compared_at_us"] = max(
            time.time_ns() // 1000, int(comparison.get("compared_at_us") or 0) + 1
        )
        try:
            value = COMPARISON.encode(comparison)
        except (SchemaError, ValueError, TypeError, KeyError) as exc:
            self.deadletters.send(msg, "invalid", f"judged comparison: {exc}")
            return
        self.producer.produce(
            self.topics.comparisons, value, comparison["request_id"], partition=msg.partition()
        )

    def metrics(self) -> dict[str, Any]:
        return {
            "in_flight": self._in_flight,
            "cached_verdicts": len(self.cache),
            "budget_share": round(self._share, 3),
            "judges": {name: dict(c) for name, c in self.counters.items()},
            "deadletters": dict(self.deadletters.counter.by_reason),
        }
