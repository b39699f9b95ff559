"""``shadow batch status``: the counts of one run (and its provider batches), or of the
latest runs."""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from shadowstream.cli.commands.batch_providers import chunk_json, chunks_table, provider_chunks
from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.context import load
from shadowstream.core.errors import NotFoundError


@click.command("status")
@click.argument("experiment_id", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--refresh",
    is_flag=True,
    help="Ask the providers for the state of the run's batch API jobs now (default: as the "
    "run last polled them).",
)
@connection_options
@click.pass_context
def status(
    ctx: click.Context,
    experiment_id: str | None,
    limit: int,
    fmt: str,
    refresh: bool,
    broker_url: str | None,
    clickhouse_url: str | None,
) -> None:
    """Submitted / answered / compared / failed counts of one run, or of the latest runs.

    With a run id, also each provider batch (OpenAI Batch API, Anthropic Message
    Batches) of the run: its state and request counts.
    """
    from shadowstream.cli.output import console
    from shadowstream.experiments.status import fetch_status
    from shadowstream.experiments.store import RESUMABLE, ExperimentStore

    settings = load(ctx, broker_url=broker_url, clickhouse_url=clickhouse_url)
    # only reads, unless --refresh records what the providers say now
    store = ExperimentStore(open_settings_warehouse(settings, readonly=not refresh))
    if not store.has_schema():
        if not store.has_runs_table():
            console.print("no batch runs yet")
            return
        store.require_schema()  # an older schema: says to migrate
    if experiment_id:
        record = store.get(experiment_id)
        if record is None:
            raise NotFoundError(f"no batch run {experiment_id!r} (the runs: `shadow batch status`)")
        records = [record]
    else:
        records = store.latest(limit)
    runs = fetch_status(store.warehouse, records)
    chunks = provider_chunks(settings, store, experiment_id, refresh) if experiment_id else []
    if fmt == "json":
        out = [_status_json(run) for run in runs]
        if experiment_id and out:
            out[0]["provider_batches"] = [chunk_json(c) for c in chunks]
        click.echo(json.dumps(out, indent=2))
        return
    if not runs:
        console.print("no batch runs yet")
        return
    console.print(_status_table(runs) if console.width >= 110 else _status_lines(runs))
    if experiment_id:
        record = runs[0].record
        console.print(
            f"source: {record.source}\ncreated {record.created_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"rate {record.rate:g}/s, last update by {record.owner or '-'} "
            f"{record.heartbeat_age_s:,.0f}s ago",
            highlight=False,
        )
        if record.message:
            console.print(f"note: {record.message}", highlight=False)
        if chunks:
            console.print(chunks_table(chunks))
        if runs[0].status in RESUMABLE:
            console.print(f"continue with: shadow batch run --resume {record.experiment_id}")


def _status_json(run: Any) -> dict[str, Any]:
    record = run.record
    return {
        "experiment_id": record.experiment_id,
        "status": run.status,
        "source": record.source,
        "total": record.total,
        "submitted": run.submitted,
        "created_at": record.created_at.isoformat(),
        "message": record.message,
        "challengers": {name: vars(counts) for name, counts in run.challengers.items()},
    }


def _status_table(runs: list[Any]) -> Table:
    table = Table(title="Batch runs", title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in [
        ("run", "left"),
        ("status", "left"),
        ("challenger", "left"),
        ("items", "right"),
        ("submitted", "right"),
        ("answered", "right"),
        ("compared", "right"),
        ("failed", "right"),
        ("diverged", "right"),
        ("not routed", "right"),
    ]:
        table.add_column(header, justify=justify, no_wrap=header in ("run", "status"))  # type: ignore[arg-type]
    for run in runs:
        record = run.record
        for i, (name, c) in enumerate(run.challengers.items()):
            first = i == 0
            table.add_row(
                record.experiment_id if first else "",
                _styled_status(run.status) if first else "",
                name,
                f"{record.total:,}" if first else "",
                f"{run.submitted:,}" if first else "",
                f"{c.answered:,}" + (f" +{c.skipped:,} skipped" if c.skipped else ""),
                f"{c.compared:,}",
                f"{c.failed:,}",
                f"{c.diverged / c.compared:.1%}" if c.compared else "-",
                f"{c.not_routed:,}",
            )
    return table


def _status_lines(runs: list[Any]) -> Text:
    """The same numbers for a narrow terminal: a line per run, then one per challenger."""
    text = Text()
    for run in runs:
        record = run.record
        text.append(record.experiment_id, style="bold")
        text.append("  ")
        text.append_text(_styled_status(run.status))
        text.append(f"  {record.total:,} items, {run.submitted:,} submitted\n")
        for name, c in run.challengers.items():
            skipped = f" (+{c.skipped:,} skipped)" if c.skipped else ""
            diverged = f"{c.diverged / c.compared:.1%}" if c.compared else "-"
            not_routed = f", not routed {c.not_routed:,}" if c.not_routed else ""
            text.append(
                f"  {name}: answered {c.answered:,}{skipped}, compared {c.compared:,}, "
                f"failed {c.failed:,}, diverged {diverged}{not_routed}\n"
            )
    return text


def _styled_status(value: str) -> Text:
    style = {
        "completed": "green",
        "running": "cyan",
        "submitted": "cyan",
        "interrupted": "yellow",
        "incomplete": "yellow",
        "cancelled": "red",
    }.get(value, "")
    return Text(value, style=style)
