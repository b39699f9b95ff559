"""Provider batches of a run from any terminal: read, refresh from the provider, cancel.

``shadow batch status ID`` shows the stored state (what the run's submitter
last polled); ``--refresh`` asks the providers now. ``shadow batch cancel ID``
cancels every provider batch of the run that has not ended (the submitter,
if still running, does the same when it sees the cancel command).
Refreshing or cancelling needs the challenger's ``batch_api`` in the local
config (and its API key); a chunk whose challenger is not configured here is
left as stored, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

from shadowstream.core.config import Settings
from shadowstream.experiments.provider_store import ChunkRecord, ProviderBatchStore
from shadowstream.experiments.providers import BatchProvider, ProviderError, build_provider


@dataclass(frozen=True)
class ChunkOutcome:
    chunk: ChunkRecord
    note: str = ""


def _providers(settings: Settings, chunks: list[ChunkRecord]) -> dict[str, BatchProvider | str]:
    out: dict[str, BatchProvider | str] = {}
    known = {s.name: s for s in settings.challengers}
    for name in sorted({c.challenger for c in chunks}):
        spec = known.get(name)
        if spec is None or spec.batch_api is None:
            out[name] = f"challenger {name!r} has no batch_api in this config"
            continue
        out[name] = build_provider(spec)
    return out


def refresh_chunks(
    settings: Settings, store: ProviderBatchStore, experiment_id: str, cancel: bool = False
) -> list[ChunkOutcome]:
    """Poll (or cancel) every provider batch of the run that has not ended; store the news."""
    chunks = store.chunks(experiment_id)
    pending = [c for c in chunks if not c.state.ended and c.batch_id]
    providers = _providers(settings, pending) if pending else {}
    out = []
    for chunk in chunks:
        provider = providers.get(chunk.challenger)
        if chunk.state.ended or not chunk.batch_id or provider is None:
            out.append(ChunkOutcome(chunk))
            continue
        if isinstance(provider, str):
            out.append(ChunkOutcome(chunk, provider))
            continue
        try:
            state = provider.cancel(chunk.batch_id) if cancel else provider.poll(chunk.batch_id)
        except ProviderError as exc:
            out.append(ChunkOutcome(chunk, str(exc)))
            continue
        out.append(ChunkOutcome(store.save(chunk.with_state(state))))
    return out
