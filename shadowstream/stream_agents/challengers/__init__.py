"""Challenger runtime: adapters (callable, HTTP), limits, and the worker agent."""

from __future__ import annotations

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.core.errors import ChallengerError
from shadowstream.stream_agents.challengers.base import (
    ChallengeContext,
    ChallengerAdapter,
    ChallengerCallError,
    ModelAnswer,
)

__all__ = [
    "ChallengeContext",
    "ChallengerAdapter",
    "ChallengerCallError",
    "ModelAnswer",
    "build_adapter",
]


def build_adapter(spec: ChallengerSpec) -> ChallengerAdapter:
    """The adapter a challenger's config describes (callable or HTTP)."""
    if spec.callable is not None:
        from shadowstream.stream_agents.challengers.callable_adapter import CallableAdapter

        return CallableAdapter(spec.name, spec.callable, spec.concurrency)
    if spec.http is None:
        raise ChallengerError(
            f"challenger {spec.name!r} is batch-only (batch_api, no callable or http): "
            "its batch runs go through its batch API, it has no worker"
        )
    from shadowstream.stream_agents.challengers.http_adapter import HttpAdapter

    return HttpAdapter(spec.name, spec.http, spec.concurrency, spec.timeout_seconds)
