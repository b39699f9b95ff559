"""Analytics commands: ``shadow report`` (and the promotion gate)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from shadow_cli.main import load, open_settings_warehouse, parse_duration, parse_time


def register(cli: click.Group) -> None:
    cli.add_command(report)


@click.command()
@click.option("--since", "since", default=None, help="Only the last DURATION (30m, 24h, 7d).")
@click.option("--from", "start", default=None, help="Start time (ISO 8601, UTC unless given).")
@click.option("--to", "end", default=None, help="End time (ISO 8601).")
@click.option("--experiment", default="", help="Only this experiment (live or a batch id).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file.")
@click.option("--clickhouse-url", default=None, help="Override SHADOW_CLICKHOUSE_URL.")
@click.pass_context
def report(
    ctx: click.Context,
    since: str | None,
    start: str | None,
    end: str | None,
    experiment: str,
    fmt: str,
    output: str | None,
    clickhouse_url: str | None,
) -> None:
    """Per-challenger comparison report, computed by SQL in ClickHouse."""
    import csv
    import io
    import json

    from analytics.report import EPOCH, FAR_FUTURE, TimeRange, summary
    from shadow_cli.output import console, summary_table

    settings = load(ctx, clickhouse_url=clickhouse_url)
    now = dt.datetime.now(dt.UTC)
    window = TimeRange(
        since=now - parse_duration(since) if since else (parse_time(start) if start else EPOCH),
        until=parse_time(end) if end else FAR_FUTURE,
    )
    warehouse = open_settings_warehouse(settings)
    rows = summary(warehouse, window, experiment)
    if fmt == "table":
        if not rows:
            console.print("no comparisons in that range yet")
            return
        if output:
            with open(output, "w") as handle:
                from rich.console import Console

                Console(file=handle, width=160).print(summary_table(rows))
        else:
            console.print(summary_table(rows))
        return
    if fmt == "json":
        text = json.dumps(rows, indent=2, default=str)
    else:
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        text = buffer.getvalue()
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text)


