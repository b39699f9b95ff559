"""``shadow batch status`` / ``cancel``: the provider batches of a run (batch APIs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich import box
from rich.table import Table


def provider_chunks(settings: Any, store: Any, experiment_id: str, refresh: bool) -> list[Any]:
    from shadowstream.experiments.provider_ops import ChunkOutcome, refresh_chunks
    from shadowstream.experiments.provider_store import ProviderBatchStore

    chunk_store = ProviderBatchStore(store.warehouse)
    if not chunk_store.has_table():
        return []
    if refresh:
        return refresh_chunks(settings, chunk_store, experiment_id)
    return [ChunkOutcome(c) for c in chunk_store.chunks(experiment_id)]


def chunk_json(outcome: Any) -> dict[str, Any]:
    c = outcome.chunk
    return {
        "challenger": c.challenger,
        "chunk": c.chunk,
        "provider": c.provider,
        "batch_id": c.batch_id,
        "items": [c.first_item, c.end_item],
        "requests": c.requests,
        **{k: v for k, v in vars(c.state).items() if k not in ("batch_id", "turnaround_s")},
        "updated_at": dt.datetime.fromtimestamp(c.updated_ms / 1000, dt.UTC).isoformat(),
        "note": outcome.note,
    }


def chunks_table(chunks: list[Any]) -> Table:
    table = Table(title="Provider batches", title_justify="left", box=box.SIMPLE_HEAD)
    for header in (
        "challenger",
        "batch",
        "status",
        "requests",
        "succeeded",
        "errored",
        "expired",
        "cancelled",
        "processing",
        "polled",
    ):
        table.add_column(
            header, justify="left" if header in ("challenger", "batch", "status") else "right"
        )
    for outcome in chunks:
        c, st = outcome.chunk, outcome.chunk.state
        polled = dt.datetime.fromtimestamp(c.updated_ms / 1000, dt.UTC)
        status = st.status + (f" ({st.message})" if st.message else "")
        status += f" - {outcome.note}" if outcome.note else ""
        table.add_row(
            c.challenger,
            f"{c.provider}:{c.batch_id or '-'}",
            status,
            f"{c.requests:,}",
            f"{st.succeeded:,}",
            f"{st.errored:,}",
            f"{st.expired:,}",
            f"{st.cancelled:,}",
            f"{st.processing:,}",
            f"{polled:%H:%M:%S}",
        )
    return table


def cancel_provider_batches(settings: Any, store: Any, experiment_id: str) -> None:
    """Cancel the run's provider batches that have not ended; one line per batch touched."""
    from shadowstream.cli.output import console
    from shadowstream.experiments.provider_ops import refresh_chunks
    from shadowstream.experiments.provider_store import ProviderBatchStore

    chunk_store = ProviderBatchStore(store.warehouse)
    if chunk_store.has_table():
        for outcome in refresh_chunks(settings, chunk_store, experiment_id, cancel=True):
            c = outcome.chunk
            if c.batch_id and (outcome.note or c.state.status in ("cancelling", "canceling")):
                what = outcome.note or f"{c.state.status} at the provider"
                console.print(
                    f"  {c.challenger} {c.provider}:{c.batch_id}: {what}", highlight=False
                )
