"""Follow a run's results on Kafka as they happen (for progress and flow control).

Reads, from the moment the run starts, the responses, comparisons, router
changelog and control topics, and keeps only messages keyed by the run's
request ids (``<experiment>:...``; live traffic is skipped on the key, never
decoded). Per (request, challenger) it records what happened:

* answered / skipped - the challenger's response (``skipped``: cancelled run)
* compared / failed  - the join's comparison (failed: challenger not ``ok``)
* unrouted - the router closed the request without asking that challenger
  (its changelog marker does not list it): the endpoint is not shadowed, the
  challenger's rate limit or budget is exhausted, the run was cancelled, or
  the router does not know the challenger. Nothing more will come for it.

A request is *resolved* when every challenger of the run is answered,
skipped, compared or unrouted; resolved requests leave the in-flight window.
The answer rate (responses actually produced by the workers) sizes that
window; comparisons closed as challenger_missing after the join window do
not count, so an overloaded worker shrinks the window instead of growing it.
It also notices a ``cancel`` command for the run on the control topic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from shadowstream.core.errors import BrokerError, SchemaError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.ids import key_prefix
from shadowstream.schemas import COMPARISON, RESPONSE
from shadowstream.schemas.wire import MARKERS_KEY, iter_markers

log = logging.getLogger(__name__)

ANSWERED, SKIPPED, COMPARED, FAILED, UNROUTED = range(5)
KINDS = 5
# the request left the in-flight window: its challenger did something (or never will)
RESOLVING = (ANSWERED, SKIPPED, COMPARED, UNROUTED)
# nothing more will come for the pair
FINAL = (SKIPPED, COMPARED, UNROUTED)


@dataclass(frozen=True)
class Results:
    """Pairs (request, challenger) per outcome, and the run's flow state."""

    answered: int
    skipped: int
    compared: int
    failed: int
    unrouted: int
    final: int  # pairs with nothing more to come: compared, unrouted or skipped
    in_flight: int
    lost: int  # requests that stayed in flight too long and were given up on
    answer_rate: float  # challenger answers per second and challenger, recently
    idle_s: float  # since anything last happened for this run
    cancelled: bool


def parse_marker_asked(value: bytes) -> frozenset[str] | None:
    """The challengers a single-marker changelog record says were asked (None: not one).

    Format written by shadowstream.schemas.wire.encode_marker: ``{"t", "a", "r"}``.
    """
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("a"), list):
        return None
    return frozenset(str(name) for name in raw["a"])


class ResultWatcher:
    def __init__(
        self,
        kafka: KafkaClientConfig,
        topics: TopicNames,
        experiment_id: str,
        challengers: Sequence[str],
        baseline: Mapping[str, Iterable[str]] | None = None,
        rate_window_s: float = 3.0,
    ) -> None:
        self.kafka = kafka
        self.topics = topics
        self.experiment_id = experiment_id
        self._prefix = key_prefix(experiment_id)
        self._index = {name: i for i, name in enumerate(challengers)}
        self._n = len(challengers)
        self._all = (1 << self._n) - 1
        self._lock = threading.Lock()
        # request id -> bit (kind * n + challenger index) per recorded outcome
        self._bits: dict[str, int] = {}
        self._counts = [0] * KINDS
        self._final = 0
        self._lost = 0
        self._pending: dict[str, float] = {}  # request id -> when it was submitted
        self._new_unrouted: set[str] = set()
        self._answers: deque[float] = deque()
        self._rate_window_s = rate_window_s
        self._last_event = time.monotonic()
        self._cancelled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self.record_compared(baseline or {})

    # -- lifecycle ------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        """Assign every partition at its current end; from here on nothing is missed."""
        conf = self.kafka.consumer(f"{self.topics.prefix}.batch-watch.{self.experiment_id}")
        conf.update({"enable.partition.eof": False})
        consumer = Consumer(conf)
        wanted = [
            self.topics.responses,
            self.topics.comparisons,
            self.topics.router_changelog,
            self.topics.control,
        ]
        try:
            metadata = consumer.list_topics(timeout=timeout)
            assignment = []
            for topic in wanted:
                meta = metadata.topics.get(topic)
                if meta is None or meta.error is not None:
                    continue  # e.g. no changelog yet: its information is only lost
                for partition in meta.partitions:
                    tp = TopicPartition(topic, partition)
                    _, high = consumer.get_watermark_offsets(tp, timeout=timeout)
                    assignment.append(TopicPartition(topic, partition, max(high, 0)))
        except KafkaException as exc:
            consumer.close()
            raise BrokerError(f"cannot read {self.topics.responses}: {exc}") from None
        consumer.assign(assignment)
        self._consumer = consumer
        self._thread = threading.Thread(
            target=self._run, name=f"batch-watch-{self.experiment_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # -- what the submitter asks ------------------------------------------------------------
    def submitted(self, request_id: str) -> None:
        """A request went out: in flight until resolved (unless it already is)."""
        with self._lock:
            if self._mask(self._bits.get(request_id, 0), RESOLVING) != self._all:
                self._pending[request_id] = time.monotonic()

    def touch(self) -> None:
        """Something happened that is not a result (e.g. provider batches ended)."""
        with self._lock:
            self._last_event = time.monotonic()

    def record_compared(self, compared: Mapping[str, Iterable[str]]) -> None:
        """Comparisons known from ClickHouse (before the run, or missed on Kafka)."""
        for rid, names in compared.items():
            for name in names:
                self._record(rid, name, COMPARED)

    def record_not_routed(self, not_routed: Mapping[str, Iterable[str]]) -> None:
        """Pairs known (from ClickHouse) to have been left out by the router."""
        for rid, names in not_routed.items():
            for name in names:
                self._record(rid, name, UNROUTED, known=True)

    def take_not_routed(self) -> dict[str, list[str]]:
        """Requests newly found not routed, with every challenger left out so far."""
        with self._lock:
            rids, self._new_unrouted = self._new_unrouted, set()
            out = {}
            for rid in rids:
                mask = self._mask(self._bits.get(rid, 0), (UNROUTED,))
                out[rid] = [name for name, i in self._index.items() if mask & (1 << i)]
        return out

    def expire_pending(self, max_age_s: float) -> int:
        """Give up on requests in flight for longer than ``max_age_s``; returns how many.

        (E.g. a re-submitted request the join still remembered as closed: it
        drops the duplicate silently.)
        """
        cutoff = time.monotonic() - max_age_s
        with self._lock:
            old = [rid for rid, at in self._pending.items() if at < cutoff]
            for rid in old:
                del self._pending[rid]
            self._lost += len(old)
        return len(old)

    def results(self) -> Results:
        now = time.monotonic()
        with self._lock:
            cutoff = now - self._rate_window_s
            while self._answers and self._answers[0] < cutoff:
                self._answers.popleft()
            return Results(
                answered=self._counts[ANSWERED],
                skipped=self._counts[SKIPPED],
                compared=self._counts[COMPARED],
                failed=self._counts[FAILED],
                unrouted=self._counts[UNROUTED],
                final=self._final,
                in_flight=len(self._pending),
                lost=self._lost,
                answer_rate=len(self._answers) / self._rate_window_s / self._n,
                idle_s=now - self._last_event,
                cancelled=self._cancelled,
            )

    # -- the consumer thread ---------------------------------------------------------------
    def _run(self) -> None:
        assert self._consumer is not None
        while not self._stop.is_set():
            try:
                messages = self._consumer.consume(2_000, 0.2)
            except KafkaException as exc:  # librdkafka retries; keep going
                log.warning("batch watcher: %s", exc)
                time.sleep(0.5)
                continue
            for msg in messages:
                if msg.error() is None:
                    self.handle(msg)

    def handle(self, msg: Message) -> None:
        key = msg.key()
        value = msg.value()
        if not key or not value:
            return
        topic = msg.topic()
        if topic == self.topics.control:
            if key == self.experiment_id.encode():
                self._control(value)
            return
        if topic == self.topics.router_changelog and key == MARKERS_KEY:
            # the router writes many markers per record: pick out this run's
            for rid, marker in iter_markers(key, value):
                if rid.encode().startswith(self._prefix):
                    self._unrouted(rid, marker.asked)
            return
        if not key.startswith(self._prefix):
            return
        rid = key.decode()
        try:
            if topic == self.topics.responses:
                response = RESPONSE.decode(value)
                if response["role"] == "challenger":
                    kind = SKIPPED if response["status"] == "skipped" else ANSWERED
                    self._record(rid, response["challenger"], kind)
            elif topic == self.topics.comparisons:
                comparison = COMPARISON.decode(value)
                if comparison["outcome"] != "late":
                    name = comparison["challenger"]
                    self._record(rid, name, COMPARED)
                    if comparison["challenger_status"] != "ok":
                        self._record(rid, name, FAILED)
            elif topic == self.topics.router_changelog:
                asked = parse_marker_asked(value)
                if asked is not None:
                    self._unrouted(rid, asked)
        except SchemaError:
            return  # the pipeline dead-letters it; nothing to count here

    def _unrouted(self, rid: str, asked: frozenset[str]) -> None:
        for name in self._index:
            if name not in asked:
                self._record(rid, name, UNROUTED)

    def _control(self, value: bytes) -> None:
        try:
            command = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(command, dict):
            return
        with self._lock:
            if command.get("type") == "cancel":
                self._cancelled = True
            elif command.get("type") == "experiment":
                self._cancelled = bool(command.get("cancelled"))

    def _mask(self, bits: int, kinds: Iterable[int]) -> int:
        """Challengers (one bit each) with any of ``kinds`` recorded."""
        out = 0
        for kind in kinds:
            out |= bits >> (kind * self._n)
        return out & self._all

    def _record(self, rid: str, challenger: str, kind: int, *, known: bool = False) -> None:
        """One outcome of a pair; ``known``: read back from ClickHouse, not news."""
        index = self._index.get(challenger)
        if index is None:
            return
        pair = 1 << index
        bit = pair << (kind * self._n)
        with self._lock:
            bits = self._bits.get(rid, 0)
            if bits & bit:
                return  # a duplicate delivery
            if kind == UNROUTED and self._mask(bits, RESOLVING) & pair:
                return  # asked by an earlier submission of this request: nothing missing
            was_final = bool(self._mask(bits, FINAL) & pair)
            bits |= bit
            self._bits[rid] = bits
            self._counts[kind] += 1
            self._last_event = time.monotonic()
            if kind in FINAL and not was_final:
                self._final += 1
            if kind in (ANSWERED, SKIPPED):
                self._answers.append(self._last_event)
            elif kind == UNROUTED and not known and not self._cancelled:
                # (a cancelled run is not routed because it was cancelled: not worth keeping)
                self._new_unrouted.add(rid)
            if rid in self._pending and self._mask(bits, RESOLVING) == self._all:
                del self._pending[rid]
