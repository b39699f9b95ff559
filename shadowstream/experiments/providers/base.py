"""The provider batch API contract: submit request lines, poll, read results, cancel.

One implementation per provider (``openai_batch``, ``anthropic_batch``), each
on the provider's official client library. Calls block (the stage runs them in
a thread); every failure of the API surfaces as :class:`ProviderError` with
the provider's message, never a client-library exception.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shadowstream.core.challenger_config import BatchApiSpec, ChallengerSpec
from shadowstream.core.errors import ConfigError, ExperimentError

ResultKind = Literal["succeeded", "errored", "expired", "canceled"]


class ProviderError(ExperimentError):
    """A provider batch API call failed (unreachable, refused, unknown batch, ...)."""


@dataclass(frozen=True)
class BatchState:
    """A provider batch as last polled, in the provider's words and counts."""

    batch_id: str
    status: str  # the provider's own: in_progress, completed, expired, ended, ...
    ended: bool  # no request will change any more: results can be read
    total: int = 0
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0
    processing: int = 0
    input_file_id: str = ""
    output_file_id: str = ""
    error_file_id: str = ""
    message: str = ""  # why a whole batch failed
    turnaround_s: float | None = None  # created -> ended


@dataclass(frozen=True)
class ItemResult:
    """One request's outcome: the provider's response body, or why there is none."""

    custom_id: str
    kind: ResultKind
    body: Mapping[str, Any] | None = None
    error: str | None = None


class BatchProvider(Protocol):
    name: str
    max_requests: int  # per batch, the provider's limit (or the configured lower one)
    max_bytes: int

    def line(self, custom_id: str, body: Mapping[str, Any]) -> bytes:
        """One request as the provider takes it (its size counts toward max_bytes)."""
        ...

    def submit(self, lines: Sequence[bytes], metadata: Mapping[str, str]) -> BatchState: ...

    def poll(self, batch_id: str) -> BatchState: ...

    def results(self, state: BatchState) -> Iterator[ItemResult]: ...

    def cancel(self, batch_id: str) -> BatchState: ...

    def find(self, metadata: Mapping[str, str]) -> BatchState | None:
        """A batch created with this metadata (a run killed before it stored the id)."""
        ...


def custom_id(request_id: str) -> str:
    """A provider-safe id for a request (Anthropic: ``^[a-zA-Z0-9_-]{1,64}$``)."""
    return "s" + hashlib.blake2b(request_id.encode(), digest_size=20).hexdigest()


def batch_limits(spec: BatchApiSpec, max_requests: int, max_bytes: int) -> tuple[int, int]:
    """(requests, bytes) per batch: as configured, never above the provider's limits."""
    return (
        min(spec.max_requests_per_batch or max_requests, max_requests),
        min(spec.max_bytes_per_batch or max_bytes, max_bytes),
    )


def api_key(challenger: ChallengerSpec, default_env: str) -> str:
    """The provider key from the env var ``batch_api.api_key_env`` names (default
    ``default_env``); ConfigError when it is not set."""
    spec = challenger.batch_api
    assert spec is not None
    env = spec.api_key_env or default_env
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"challenger {challenger.name!r}: env var {env} is not set")
    return key
