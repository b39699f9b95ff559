"""The OpenAI Batch API (and OpenAI-compatible servers that implement it), official client.

A batch: the requests as a JSONL file (``custom_id``, ``method``, ``url``,
``body``) uploaded with purpose ``batch``, then ``POST /v1/batches`` with the
file, the endpoint and the ``24h`` completion window. Statuses:
``validating``, ``in_progress``, ``finalizing``, ``completed``, ``failed``
(the input did not validate; ``errors`` says why), ``expired`` (not done
within the window: finished requests are in the output file, the rest in the
error file as ``batch_expired``), ``cancelling``, ``cancelled``. Results: the
output file (one line per request answered: ``custom_id``, ``response``
``{status_code, body}``) and the error file (requests that failed, with a
non-2xx ``response`` or an ``error`` such as ``batch_expired``).
Limits: 50,000 requests and 200 MB per input file.
"""

from __future__ import annotations

import itertools
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

MAX_REQUESTS = 50_000
MAX_BYTES = 200_000_000
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


def _when(batch: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(batch, name, None)
        if value:
            return int(value)
    return None


class OpenAIBatchProvider:
    name = "openai"

    def __init__(self, challenger: ChallengerSpec, client: Any = None) -> None:
        spec = challenger.batch_api
        assert spec is not None
        self.endpoint = spec.endpoint
        self.max_requests, self.max_bytes = batch_limits(spec, MAX_REQUESTS, MAX_BYTES)
        self.where = f"OpenAI batch API{f' at {spec.base_url}' if spec.base_url else ''}"
        if client is None:
            import openai

            key = api_key(challenger, "OPENAI_API_KEY")
            client = openai.OpenAI(
                api_key=key, base_url=spec.base_url, timeout=spec.timeout_seconds, max_retries=3
            )
        self.client = client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import openai

        try:
            return fn(*args, **kwargs)
        except openai.OpenAIError as exc:
            raise ProviderError(f"{self.where}: {what} failed: {exc}") from None

    def line(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        record = {"custom_id": custom_id, "method": "POST", "url": self.endpoint, "body": body}
        return orjson.dumps(record) + b"\n"

    def submit(self, lines: Sequence[bytes], metadata: Mapping[str, str]) -> BatchState:
        upload = self._call(
            "upload",
            self.client.files.create,
            file=("shadowstream-batch.jsonl", b"".join(lines)),
            purpose="batch",
        )
        batch = self._call(
            "create batch",
            self.client.batches.create,
            input_file_id=upload.id,
            endpoint=self.endpoint,
            completion_window="24h",
            metadata=dict(metadata),
        )
        return self._state(batch)

    def poll(self, batch_id: str) -> BatchState:
        return self._state(self._call("retrieve", self.client.batches.retrieve, batch_id))

    def cancel(self, batch_id: str) -> BatchState:
        return self._state(self._call("cancel", self.client.batches.cancel, batch_id))

    def find(self, metadata: Mapping[str, str]) -> BatchState | None:
        listing = self._call("list batches", self.client.batches.list, limit=100)
        for batch in itertools.islice(listing, 1_000):
            found = batch.metadata or {}
            if all(found.get(k) == v for k, v in metadata.items()):
                return self._state(batch)
        return None

    def _state(self, batch: Any) -> BatchState:
        counts = batch.request_counts
        total = counts.total if counts else 0
        done = counts.completed if counts else 0
        failed = counts.failed if counts else 0
        ended = batch.status in ENDED
        message = ""
        if batch.errors is not None and batch.errors.data:
            first = batch.errors.data[0]
            line = f" (line {first.line})" if getattr(first, "line", None) else ""
            message = f"{first.code}: {first.message}{line}"
        finished = _when(batch, "completed_at", "failed_at", "expired_at", "cancelled_at")
        return BatchState(
            batch_id=batch.id,
            status=batch.status,
            ended=ended,
            total=total,
            succeeded=done,
            errored=failed,
            processing=0 if ended else max(total - done - failed, 0),
            input_file_id=batch.input_file_id or "",
            output_file_id=batch.output_file_id or "",
            error_file_id=batch.error_file_id or "",
            message=message,
            turnaround_s=float(finished - batch.created_at) if finished else None,
        )

    def results(self, state: BatchState) -> Iterator[ItemResult]:
        for file_id in (state.output_file_id, state.error_file_id):
            if not file_id:
                continue
            content = self._call("download results", self.client.files.content, file_id).read()
            for raw in content.splitlines():
                if raw.strip():
                    yield _result(orjson.loads(raw))


def _result(line: Mapping[str, Any]) -> ItemResult:
    cid = str(line.get("custom_id", ""))
    error = line.get("error")
    if error:
        code = str(error.get("code") or "error")
        kind = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(code, "errored")
        return ItemResult(cid, kind, error=f"{code}: {error.get('message', '')}")  # type: ignore[arg-type]
    response = line.get("response") or {}
    status = int(response.get("status_code") or 0)
    body = response.get("body") or {}
    if 200 <= status < 300 and isinstance(body, dict):
        return ItemResult(cid, "succeeded", body=body)
    detail = body.get("error", {}) if isinstance(body, dict) else {}
    message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
    kind_name = detail.get("type", "") if isinstance(detail, dict) else ""
    return ItemResult(cid, "errored", error=f"HTTP {status} {kind_name}: {message}".strip())
