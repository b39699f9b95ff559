"""A run's challengers with a ``batch_api``: their answers come from provider batches.

1. **prepare** (one pass over the source): every item a provider challenger
   still needs (no comparison yet, and an endpoint it would be routed) goes
   into a provider batch, split by the provider's limits (requests, bytes).
   Chunks cover contiguous runs of source items; each is stored before and
   right after its batch is created, so a restarted run finds the batches
   already paid for (:mod:`~shadowstream.experiments.provider_store`).
2. **poll** until every batch has ended (completed, failed, expired,
   cancelled), storing the provider's status and counts as they change.
3. **answers** (during the submission pass, in source order): each item's
   result becomes the challenger's ResponseEvent - the mapped output, tokens
   and cost at the batch price; errored, expired, cancelled or missing
   results as failures (``error``; ``timeout`` for expired) - submitted along
   with the request (header ``shadow.answered``), so the ordinary join
   compares it. Results are read one batch at a time.

Latency of such an answer is the batch's turnaround (created -> ended), not
model time: compare latency on live traffic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.core.config import Settings
from shadowstream.core.endpoints import endpoint_matches
from shadowstream.experiments.ids import request_id
from shadowstream.experiments.items import BatchItem
from shadowstream.experiments.provider_store import CREATING, ChunkRecord, ProviderBatchStore
from shadowstream.experiments.providers import BatchProvider, build_provider, custom_id
from shadowstream.experiments.providers.base import BatchState, ItemResult
from shadowstream.experiments.providers.mapping import (
    MappingError,
    RequestMapper,
    ResponseMapper,
    batch_prices,
    cost,
)
from shadowstream.experiments.sources import Source
from shadowstream.schemas.records import ResponseEvent, Status


@dataclass(frozen=True)
class ProviderProgress:
    challenger: str
    provider: str
    batches: int
    ended: int
    requests: int
    succeeded: int
    errored: int
    expired: int
    cancelled: int
    processing: int
    statuses: str  # e.g. "in_progress x2, completed"


@dataclass
class _Open:
    """The chunk being filled."""

    first: int = -1
    last: int = -1
    lines: list[bytes] = field(default_factory=list)
    size: int = 0


@dataclass
class _Target:
    spec: ChallengerSpec
    provider: BatchProvider
    requests: RequestMapper
    responses: ResponseMapper
    prices: tuple[float | None, float | None]
    chunks: list[ChunkRecord] = field(default_factory=list)
    oversized: dict[str, str] = field(default_factory=dict)
    next_poll: float = 0.0
    cursor: int = 0
    loaded: tuple[int, dict[str, ItemResult]] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def chunk_for(self, ordinal: int) -> ChunkRecord | None:
        """The chunk covering ``ordinal`` (ordinals only grow within a pass)."""
        while self.cursor < len(self.chunks) and self.chunks[self.cursor].end_item <= ordinal:
            self.cursor += 1
        if self.cursor < len(self.chunks) and self.chunks[self.cursor].covers(ordinal):
            return self.chunks[self.cursor]
        return None


class ProviderStage:
    def __init__(
        self,
        settings: Settings,
        store: ProviderBatchStore,
        experiment_id: str,
        names: list[str],
        providers: Mapping[str, BatchProvider] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.experiment_id = experiment_id
        self.targets: dict[str, _Target] = {}
        for name in names:
            spec = settings.challenger(name)
            assert spec.batch_api is not None
            provider = (providers or {}).get(name) or build_provider(spec)
            self.targets[name] = _Target(
                spec,
                provider,
                RequestMapper(spec),
                ResponseMapper(spec.batch_api),
                batch_prices(spec),
            )

    def allowed(self, target: _Target, endpoint: str) -> bool:
        """The router's endpoint guard: never pay for a request it would not route."""
        s = self.settings
        return (
            endpoint_matches(endpoint, s.shadow_endpoints)
            and not endpoint_matches(endpoint, s.write_endpoints)
            and endpoint_matches(endpoint, target.spec.endpoints)
        )

    # -- 1. prepare ---------------------------------------------------------------------------
    def prepare(self, source: Source, baseline: Mapping[str, frozenset[str]]) -> int:
        """Create the batches still missing; returns how many were created now."""
        stored = self.store.chunks(self.experiment_id)
        created = 0
        for target in self.targets.values():
            target.chunks = self._recover(
                [c for c in stored if c.challenger == target.name], target
            )
        open_chunks = {name: _Open() for name in self.targets}
        ordinal = 0
        for page in source.pages(2_000):
            for item in page:
                rid = request_id(self.experiment_id, item.source_id)
                done = baseline.get(rid, frozenset())
                for target in self.targets.values():
                    current = open_chunks[target.name]
                    if target.chunk_for(ordinal) is not None:
                        created += self._flush(target, current)  # never straddle a stored chunk
                    elif target.name not in done and self.allowed(target, item.endpoint):
                        created += self._add(target, current, ordinal, rid, item)
                ordinal += 1
        for target in self.targets.values():
            created += self._flush(target, open_chunks[target.name])
            target.chunks.sort(key=lambda c: c.first_item)
            target.cursor = 0
        return created

    def _recover(self, chunks: list[ChunkRecord], target: _Target) -> list[ChunkRecord]:
        """Chunks whose create call was interrupted: found by metadata, or dropped (redone)."""
        kept = []
        for chunk in chunks:
            if chunk.state.status == CREATING and not chunk.batch_id:
                found = target.provider.find(self._metadata(target.name, chunk.chunk))
                if found is None:
                    continue
                chunk = self.store.save(chunk.with_state(found))
            kept.append(chunk)
        return sorted(kept, key=lambda c: c.first_item)

    def _metadata(self, name: str, chunk: int) -> dict[str, str]:
        return {
            "shadow_experiment": self.experiment_id,
            "shadow_challenger": name,
            "shadow_chunk": str(chunk),
        }

    def _add(self, target: _Target, current: _Open, ordinal: int, rid: str, item: BatchItem) -> int:
        body = target.requests.body(item, rid, self.experiment_id)
        line = target.provider.line(custom_id(rid), body)
        if len(line) > target.provider.max_bytes:
            target.oversized[rid] = (
                f"request of {len(line):,} bytes is over the provider's batch limit "
                f"({target.provider.max_bytes:,} bytes)"
            )
            return 0
        created = 0
        if current.lines and (
            len(current.lines) >= target.provider.max_requests
            or current.size + len(line) > target.provider.max_bytes
        ):
            created = self._flush(target, current)
        if not current.lines:
            current.first = ordinal
        current.last = ordinal
        current.lines.append(line)
        current.size += len(line)
        return created

    def _flush(self, target: _Target, current: _Open) -> int:
        if not current.lines:
            return 0
        used = {c.chunk for c in target.chunks}
        index = next(i for i in range(len(used) + 1) if i not in used)
        n = len(current.lines)
        record = ChunkRecord(
            self.experiment_id,
            target.name,
            index,
            target.provider.name,
            current.first,
            current.last + 1,
            n,
            BatchState("", CREATING, False, total=n),
        )
        record = self.store.save(record)  # before paying: a crash now is recoverable
        state = target.provider.submit(current.lines, self._metadata(target.name, index))
        target.chunks.append(self.store.save(record.with_state(state)))
        current.lines, current.size, current.first, current.last = [], 0, -1, -1
        return 1

    # -- 2. poll -----------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return all(c.state.ended for t in self.targets.values() for c in t.chunks)

    def poll(self, force: bool = False) -> bool:
        """Poll the batches due (each challenger's poll interval); True once all ended."""
        now = time.monotonic()
        for target in self.targets.values():
            if not force and now < target.next_poll:
                continue
            assert target.spec.batch_api is not None
            target.next_poll = now + target.spec.batch_api.poll_interval_seconds
            for i, chunk in enumerate(target.chunks):
                if chunk.state.ended:
                    continue
                state = target.provider.poll(chunk.batch_id)
                if state != chunk.state:
                    target.chunks[i] = self.store.save(chunk.with_state(state))
        return self.ended

    def cancel(self) -> None:
        for target in self.targets.values():
            for i, chunk in enumerate(target.chunks):
                if not chunk.state.ended and chunk.batch_id:
                    target.chunks[i] = self.store.save(
                        chunk.with_state(target.provider.cancel(chunk.batch_id))
                    )

    def progress(self) -> tuple[ProviderProgress, ...]:
        out = []
        for target in self.targets.values():
            states = [c.state for c in target.chunks]
            statuses: dict[str, int] = {}
            for s in states:
                statuses[s.status] = statuses.get(s.status, 0) + 1
            out.append(
                ProviderProgress(
                    target.name,
                    target.provider.name,
                    len(states),
                    sum(s.ended for s in states),
                    sum(c.requests for c in target.chunks),
                    sum(s.succeeded for s in states),
                    sum(s.errored for s in states),
                    sum(s.expired for s in states),
                    sum(s.cancelled for s in states),
                    sum(s.processing for s in states),
                    ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(statuses.items())),
                )
            )
        return tuple(out)

    # -- 3. answers ------------------------------------------------------------------------------
    def answers(
        self, ordinal: int, rid: str, item: BatchItem, names: list[str]
    ) -> dict[str, ResponseEvent]:
        """The provider answers of one item, for those of ``names`` that have a batch_api.

        Blocking: reads a batch's results when the pass enters it.
        """
        out: dict[str, ResponseEvent] = {}
        for name in names:
            target = self.targets.get(name)
            if target is None:
                continue
            chunk = target.chunk_for(ordinal)
            if chunk is None:
                if not self.allowed(target, item.endpoint):
                    continue  # the router leaves it out too: recorded as not routed
                why = target.oversized.get(rid, "not submitted to the provider's batch API")
                out[name] = self._event(target, None, rid, "error", why)
                continue
            out[name] = self._response(target, chunk, rid, self._results(target, chunk))
        return out

    def _results(self, target: _Target, chunk: ChunkRecord) -> dict[str, ItemResult]:
        if target.loaded is None or target.loaded[0] != chunk.chunk:
            found = {r.custom_id: r for r in target.provider.results(chunk.state)}
            target.loaded = (chunk.chunk, found)
        return target.loaded[1]

    def _response(
        self, target: _Target, chunk: ChunkRecord, rid: str, results: dict[str, ItemResult]
    ) -> ResponseEvent:
        result = results.get(custom_id(rid))
        where = f"provider batch {chunk.batch_id}"
        if result is None:
            detail = f": {chunk.state.message}" if chunk.state.message else ""
            why = f"no result for this request in {where} ({chunk.state.status}{detail})"
            return self._event(target, chunk, rid, "error", why)
        if result.kind == "expired":
            return self._event(target, chunk, rid, "timeout", f"expired in {where}: {result.error}")
        if result.kind == "canceled":
            return self._event(target, chunk, rid, "error", f"cancelled in {where}")
        if result.kind != "succeeded" or result.body is None:
            return self._event(target, chunk, rid, "error", f"{result.error} ({where})")
        try:
            output, tokens_in, tokens_out = target.responses.output(result.body)
        except MappingError as exc:
            return self._event(target, chunk, rid, "error", f"{exc} ({where})")
        event = self._event(target, chunk, rid, "ok", None)
        event["output"] = orjson.dumps(output).decode()
        event["usage"] = {
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "tool_calls": None,
            "cost": cost(target.prices, tokens_in, tokens_out),
        }
        return event

    def _event(
        self,
        target: _Target,
        chunk: ChunkRecord | None,
        rid: str,
        status: Status,
        error: str | None,
    ) -> ResponseEvent:
        turnaround = chunk.state.turnaround_s if chunk is not None else None
        return {
            "request_id": rid,
            "timestamp_us": time.time_ns() // 1000,
            "role": "challenger",
            "challenger": target.name,
            "model": target.requests.model,
            "output": None,
            "latency_ms": float(turnaround or 0.0) * 1000,
            "status": status,
            "error": error[:2000] if error else None,
            "usage": {"tokens_in": None, "tokens_out": None, "tool_calls": None, "cost": None},
            "tool_trace": None,
            "experiment_id": self.experiment_id,
        }
