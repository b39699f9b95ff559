"""Provider batch APIs: a challenger's batch runs at the batch price (``batch_api``).

* :mod:`~shadowstream.experiments.providers.base` - the contract and result types
* :mod:`~shadowstream.experiments.providers.openai_batch` - OpenAI Batch API
* :mod:`~shadowstream.experiments.providers.anthropic_batch` - Anthropic Message Batches
* :mod:`~shadowstream.experiments.providers.mapping` - payload -> body, answer -> output, price

The stage that runs them inside a batch run is :mod:`shadowstream.experiments.provider_stage`.
"""

from __future__ import annotations

from shadowstream.core.challenger_config import ChallengerSpec
from shadowstream.experiments.providers.base import (
    BatchProvider,
    BatchState,
    ItemResult,
    ProviderError,
    custom_id,
)

__all__ = [
    "BatchProvider",
    "BatchState",
    "ItemResult",
    "ProviderError",
    "build_provider",
    "custom_id",
]


def build_provider(challenger: ChallengerSpec) -> BatchProvider:
    """The provider client a challenger's ``batch_api`` names (keys from its env var)."""
    spec = challenger.batch_api
    assert spec is not None, f"challenger {challenger.name!r} has no batch_api"
    if spec.provider == "anthropic":
        from shadowstream.experiments.providers.anthropic_batch import AnthropicBatchProvider

        return AnthropicBatchProvider(challenger)
    from shadowstream.experiments.providers.openai_batch import OpenAIBatchProvider

    return OpenAIBatchProvider(challenger)
