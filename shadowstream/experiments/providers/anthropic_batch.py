"""Anthropic Message Batches, with the official ``anthropic`` client.

A batch: ``POST /v1/messages/batches`` with ``requests`` (``custom_id`` and
the Messages API ``params``). ``processing_status``: ``in_progress``,
``canceling``, ``ended``; ``request_counts``: processing, succeeded,
errored, canceled, expired. Once ended, ``results_url`` serves JSONL: one
``{custom_id, result: {type: succeeded | errored | canceled | expired}}`` per
request (a ``succeeded`` result carries the ``message``, an ``errored`` one
the ``error``). Limits: 100,000 requests or 256 MB per batch. Batches carry
no metadata, so a batch created by a run killed before it stored the id
cannot be found again (:meth:`find` returns None).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.experiments.providers.base import (
    BatchState,
    ItemResult,
    ProviderError,
    api_key,
    batch_limits,
)

MAX_REQUESTS = 100_000
MAX_BYTES = 256_000_000


class AnthropicBatchProvider:
    name = "anthropic"

    def __init__(self, challenger: ChallengerSpec, client: Any = None) -> None:
        spec = challenger.batch_api
        assert spec is not None
        self.max_requests, self.max_bytes = batch_limits(spec, MAX_REQUESTS, MAX_BYTES)
        self.where = f"Anthropic Message Batches{f' at {spec.base_url}' if spec.base_url else ''}"
        if client is None:
            import anthropic

            key = api_key(challenger, "ANTHROPIC_API_KEY")
            client = anthropic.Anthropic(
                api_key=key, base_url=spec.base_url, timeout=spec.timeout_seconds, max_retries=3
            )
        self.client = client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import anthropic

        try:
            return fn(*args, **kwargs)
        except anthropic.AnthropicError as exc:
            raise ProviderError(f"{self.where}: {what} failed: {exc}") from None

    def line(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        return orjson.dumps({"custom_id": custom_id, "params": body}) + b"\n"

    def submit(self, lines: Sequence[bytes], metadata: Mapping[str, str]) -> BatchState:
        requests = [orjson.loads(line) for line in lines]
        batch = self._call("create batch", self.client.messages.batches.create, requests=requests)
        return self._state(batch)

    def poll(self, batch_id: str) -> BatchState:
        return self._state(self._call("retrieve", self.client.messages.batches.retrieve, batch_id))

    def cancel(self, batch_id: str) -> BatchState:
        return self._state(self._call("cancel", self.client.messages.batches.cancel, batch_id))

    def find(self, metadata: Mapping[str, str]) -> BatchState | None:
        return None

    def _state(self, batch: Any) -> BatchState:
        c = batch.request_counts
        ended = batch.processing_status == "ended"
        turnaround = None
        if batch.ended_at is not None and batch.created_at is not None:
            turnaround = (batch.ended_at - batch.created_at).total_seconds()
        return BatchState(
            batch_id=batch.id,
            status=batch.processing_status,
            ended=ended,
            total=c.processing + c.succeeded + c.errored + c.canceled + c.expired,
            succeeded=c.succeeded,
            errored=c.errored,
            expired=c.expired,
            cancelled=c.canceled,
            processing=c.processing,
            turnaround_s=turnaround,
        )

    def results(self, state: BatchState) -> Iterator[ItemResult]:
        stream = self._call("read results", self.client.messages.batches.results, state.batch_id)
        try:
            for entry in stream:
                yield _result(entry.model_dump(mode="json"))
        except Exception as exc:  # the stream breaking half way
            raise ProviderError(f"{self.where}: reading results failed: {exc}") from None


def _result(entry: Mapping[str, Any]) -> ItemResult:
    cid = str(entry.get("custom_id", ""))
    result = entry.get("result") or {}
    kind = str(result.get("type", ""))
    if kind == "succeeded":
        return ItemResult(cid, "succeeded", body=result.get("message") or {})
    if kind == "errored":
        outer: dict[str, Any] = result.get("error") or {}
        nested = outer.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else outer
        return ItemResult(
            cid, "errored", error=f"{inner.get('type', 'error')}: {inner.get('message', '')}"
        )
    if kind in ("expired", "canceled"):
        return ItemResult(cid, kind, error=f"{kind} by the provider before it ran")  # type: ignore[arg-type]
    return ItemResult(cid, "errored", error=f"unknown result type {kind!r}")
