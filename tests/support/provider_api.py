"""The OpenAI Batch API and Anthropic Message Batches, as their API references describe them.

State machines only (no HTTP; see tests/support/llm_server.py). No provider is
reachable from the test machine, so the tests run the official client
libraries against these. Processing advances when a batch is polled (never
with time), so tests are deterministic on a loaded machine:

OpenAI (https://platform.openai.com/docs/api-reference/batch): ``validating``
(input file checked: JSONL, unique ``custom_id``, ``method`` POST, ``url`` =
the batch's endpoint, ``body`` an object; otherwise ``failed`` with
``errors``) -> ``in_progress`` (``per_poll`` requests answered per poll) ->
``finalizing`` -> ``completed``, with an output file (successes) and an error
file (failed requests, and on expiry or cancellation the unprocessed ones with
``batch_expired`` / ``batch_cancelled``); ``expired`` when the batch's
completion window passes (here: after ``expire_after`` requests), with the
partial output; ``cancelling`` -> ``cancelled``. ``request_counts``: total,
completed, failed.

Anthropic (https://docs.anthropic.com/en/api/creating-message-batches):
``processing_status`` ``in_progress`` -> ``ended`` (or ``canceling`` ->
``ended``), ``request_counts`` processing / succeeded / errored / canceled /
expired, ``results_url`` once ended: JSONL of ``{custom_id, result: {type:
succeeded | errored | canceled | expired, ...}}``.

Answers come from ``answer(body) -> (text, tokens_in, tokens_out)``; a
request whose text contains ``FAIL`` is answered with a 400 error.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = Callable[[dict[str, Any]], tuple[str, int, int]]
_ids = itertools.count(1)
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}{int(time.time() * 1000) % 100000:05d}"


def words(text: str) -> int:
    return max(1, len(text.split()))


def text_of(body: dict[str, Any]) -> str:
    """The conversation's text (chat messages; content as a string or text blocks)."""
    parts = [str(body.get("system", ""))]
    for message in body.get("messages") or []:
        content = message.get("content", "") if isinstance(message, dict) else ""
        if isinstance(content, list):
            content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        parts.append(str(content))
    return " ".join(p for p in parts if p)


def default_answer(body: dict[str, Any]) -> tuple[str, int, int]:
    prompt = text_of(body)
    text = f"answer: {prompt}"
    return text, words(prompt), words(text)


class RequestFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass
class Provider:
    answer: Answer = default_answer
    per_poll: int = 1_000_000  # requests answered per poll while in progress
    expire_after: dict[int, int] = field(default_factory=dict)  # batch number -> processed
    lock: threading.Lock = field(default_factory=threading.Lock)
    created: int = 0  # batches created (to check a resumed run does not pay twice)

    def respond(self, body: dict[str, Any]) -> tuple[str, int, int]:
        if not isinstance(body, dict) or not body.get("messages"):
            raise RequestFailed("messages: field required")
        if "FAIL" in text_of(body):
            raise RequestFailed("the model refused this input (planted failure)")
        return self.answer(body)


# -- OpenAI ------------------------------------------------------------------------------------
@dataclass
class OpenAIBatch:
    number: int
    data: dict[str, Any]
    lines: list[dict[str, Any]]
    done: list[dict[str, Any]] = field(default_factory=list)  # output lines
    failed: list[dict[str, Any]] = field(default_factory=list)  # error lines
    position: int = 0


class OpenAIBatches(Provider):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, OpenAIBatch] = {}

    def upload(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        meta = {
            "id": new_id("file"),
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        with self.lock:
            self.files[meta["id"]] = (meta, content)
        return meta

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            found = self.files.get(str(body.get("input_file_id")))
            if found is None:
                return None
            self.created += 1
            now = int(time.time())
            data = {
                "id": new_id("batch"),
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "errors": None,
                "input_file_id": body["input_file_id"],
                "completion_window": body.get("completion_window", "24h"),
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": None,
                "expires_at": now + 86400,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
            }
            batch = OpenAIBatch(self.created, data, [])
            self.batches[data["id"]] = batch
            self._validate(batch, found[1])
            return dict(data)

    def _validate(self, batch: OpenAIBatch, content: bytes) -> None:
        errors, seen = [], set()
        for number, raw in enumerate(content.decode().splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                assert isinstance(line, dict) and isinstance(line.get("body"), dict)
            except (ValueError, AssertionError):
                errors.append(
                    {
                        "code": "invalid_json_line",
                        "line": number,
                        "message": "This line is not parseable as valid JSON.",
                    }
                )
                continue
            if line.get("custom_id") in seen:
                errors.append(
                    {
                        "code": "duplicate_custom_id",
                        "line": number,
                        "message": "The custom_id for this request is a duplicate.",
                    }
                )
            if line.get("method") != "POST" or line.get("url") != batch.data["endpoint"]:
                errors.append(
                    {
                        "code": "invalid_url",
                        "line": number,
                        "message": "The URL provided for this request does not match.",
                    }
                )
            seen.add(line.get("custom_id"))
            batch.lines.append(line)
        batch.data["request_counts"]["total"] = len(batch.lines)
        if errors:
            batch.data["errors"] = {"object": "list", "data": errors}
            batch.lines = []

    def poll(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            self._advance(batch)
            return json.loads(json.dumps(batch.data))

    def _advance(self, batch: OpenAIBatch) -> None:
        data, now = batch.data, int(time.time())
        status = data["status"]
        if status == "validating":
            if data["errors"]:
                data.update(status="failed", failed_at=now)
            else:
                data.update(status="in_progress", in_progress_at=now)
        elif status == "in_progress":
            limit = self.expire_after.get(batch.number)
            for _ in range(self.per_poll):
                if batch.position >= len(batch.lines):
                    break
                if limit is not None and batch.position >= limit:
                    self._close(
                        batch,
                        "expired",
                        "batch_expired",
                        "This request could not be executed before the completion window expired.",
                    )
                    return
                self._run(batch, batch.lines[batch.position])
                batch.position += 1
            if batch.position >= len(batch.lines):
                data.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            self._files(batch)
            data.update(status="completed", completed_at=now)
        elif status == "cancelling":
            self._close(batch, "cancelled", "batch_cancelled", "This request was cancelled.")

    def _run(self, batch: OpenAIBatch, line: dict[str, Any]) -> None:
        rid = new_id("batch_req")
        try:
            text, tokens_in, tokens_out = self.respond(line["body"])
        except RequestFailed as exc:
            error = {
                "message": str(exc),
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            batch.failed.append(
                {
                    "id": rid,
                    "custom_id": line.get("custom_id"),
                    "error": None,
                    "response": {"status_code": 400, "request_id": rid, "body": {"error": error}},
                }
            )
            batch.data["request_counts"]["failed"] += 1
            return
        body = {
            "id": new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": line["body"].get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
        batch.done.append(
            {
                "id": rid,
                "custom_id": line.get("custom_id"),
                "error": None,
                "response": {"status_code": 200, "request_id": rid, "body": body},
            }
        )
        batch.data["request_counts"]["completed"] += 1

    def _close(self, batch: OpenAIBatch, status: str, code: str, message: str) -> None:
        for line in batch.lines[batch.position :]:
            batch.failed.append(
                {
                    "id": new_id("batch_req"),
                    "custom_id": line.get("custom_id"),
                    "response": None,
                    "error": {"code": code, "message": message},
                }
            )
            batch.data["request_counts"]["failed"] += 1
        batch.position = len(batch.lines)
        self._files(batch)
        batch.data.update(status=status, **{f"{status}_at": int(time.time())})

    def _files(self, batch: OpenAIBatch) -> None:
        for kind, lines in (("output_file_id", batch.done), ("error_file_id", batch.failed)):
            if lines:
                content = "".join(json.dumps(line) + "\n" for line in lines).encode()
                meta = {
                    "id": new_id("file"),
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": f"{kind}.jsonl",
                    "purpose": "batch_output",
                    "status": "processed",
                }
                self.files[meta["id"]] = (meta, content)
                batch.data[kind] = meta["id"]

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch.data["status"] in ("validating", "in_progress", "finalizing"):
                batch.data.update(status="cancelling", cancelling_at=int(time.time()))
            return dict(batch.data)


# -- Anthropic -------------------------------------------------------------------------------
def iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AnthropicBatch:
    number: int
    data: dict[str, Any]
    requests: list[dict[str, Any]]
    results: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0


class AnthropicBatches(Provider):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batches: dict[str, AnthropicBatch] = {}
        self.base_url = ""

    def create(self, body: dict[str, Any]) -> dict[str, Any] | str:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return "requests: must be a non-empty list"
        seen = set()
        for i, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                return (
                    f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            if custom_id in seen:
                return f"requests.{i}.custom_id: duplicate custom_id {custom_id}"
            seen.add(custom_id)
        with self.lock:
            self.created += 1
            now = time.time()
            data = {
                "id": new_id("msgbatch"),
                "type": "message_batch",
                "processing_status": "in_progress",
                "request_counts": {
                    "processing": len(requests),
                    "succeeded": 0,
                    "errored": 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "ended_at": None,
                "created_at": iso(now),
                "expires_at": iso(now + 86400),
                "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": None,
            }
            self.batches[data["id"]] = AnthropicBatch(self.created, data, list(requests))
            return json.loads(json.dumps(data))

    def poll(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            status = batch.data["processing_status"]
            if status == "in_progress":
                limit = self.expire_after.get(batch.number)
                for _ in range(self.per_poll):
                    if batch.position >= len(batch.requests):
                        break
                    if limit is not None and batch.position >= limit:
                        break
                    self._run(batch, batch.requests[batch.position])
                    batch.position += 1
                if batch.position >= len(batch.requests) or (
                    limit is not None and batch.position >= limit
                ):
                    self._end(batch, "expired")  # the unprocessed rest, if any, expired
            elif status == "canceling":
                self._end(batch, "canceled")
            return json.loads(json.dumps(batch.data))

    def _run(self, batch: AnthropicBatch, request: dict[str, Any]) -> None:
        counts = batch.data["request_counts"]
        counts["processing"] -= 1
        params = request.get("params") or {}
        try:
            if "max_tokens" not in params or "model" not in params:
                raise RequestFailed("params: max_tokens and model are required")
            text, tokens_in, tokens_out = self.respond(params)
        except RequestFailed as exc:
            counts["errored"] += 1
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": str(exc)},
            }
            batch.results.append(
                {"custom_id": request["custom_id"], "result": {"type": "errored", "error": error}}
            )
            return
        counts["succeeded"] += 1
        message = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
        batch.results.append(
            {"custom_id": request["custom_id"], "result": {"type": "succeeded", "message": message}}
        )

    def _end(self, batch: AnthropicBatch, rest: str) -> None:
        counts = batch.data["request_counts"]
        for request in batch.requests[batch.position :]:
            counts["processing"] -= 1
            counts[rest] += 1
            batch.results.append({"custom_id": request["custom_id"], "result": {"type": rest}})
        batch.position = len(batch.requests)
        batch.data.update(
            processing_status="ended",
            ended_at=iso(time.time()),
            results_url=f"{self.base_url}/v1/messages/batches/{batch.data['id']}/results",
        )

    def results(self, batch_id: str) -> bytes | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch.data["processing_status"] != "ended":
                return None
            return "".join(json.dumps(r) + "\n" for r in batch.results).encode()

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch.data["processing_status"] == "in_progress":
                batch.data.update(
                    processing_status="canceling", cancel_initiated_at=iso(time.time())
                )
            return json.loads(json.dumps(batch.data))
