"""Analytics commands: ``shadow report`` and the promotion gate ``shadow gate``."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shadowstream.cli.main import load, open_settings_warehouse, parse_duration, parse_time


def register(cli: click.Group) -> None:
    cli.add_command(report)
    cli.add_command(gate)


def time_range(since: str | None, start: str | None, end: str | None) -> Any:
    from shadowstream.analytics.queries import EPOCH, FAR_FUTURE, TimeRange

    if since and start:
        raise click.BadParameter("use either --since or --from, not both")
    now = dt.datetime.now(dt.UTC)
    window = TimeRange(
        since=now - parse_duration(since) if since else (parse_time(start) if start else EPOCH),
        until=parse_time(end) if end else FAR_FUTURE,
    )
    if window.until <= window.since:
        raise click.BadParameter("the end of the range must be after its start")
    return window


def control_name(settings: Any, option: str | None) -> str:
    """--control, else the challenger flagged ``control = true`` in config, else "control"."""
    if option:
        return option
    flagged = [c.name for c in settings.challengers if c.control]
    return flagged[0] if flagged else "control"


def range_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--since", default=None, help="Only the last DURATION (30m, 24h, 7d)."),
            click.option(
                "--from", "start", default=None, help="Start (ISO 8601, UTC unless given)."
            ),
            click.option("--to", "end", default=None, help="End (ISO 8601, exclusive)."),
            click.option(
                "--experiment", default="", help="Only this experiment (live or a batch id)."
            ),
            click.option(
                "--control",
                default=None,
                help="The A/A control challenger (default: the one with control = true, "
                "else 'control').",
            ),
            click.option(
                "--exact",
                is_flag=True,
                help="Recompute from comparisons FINAL instead of the rollups (slow; a check).",
            ),
            click.option("--clickhouse-url", default=None, help="Override SHADOW_CLICKHOUSE_URL."),
        ]
    ):
        fn = option(fn)
    return fn


def _progress() -> tuple[Any, Callable[[str], None]]:
    from shadowstream.cli.output import err_console

    status = err_console.status("querying ClickHouse", spinner="dots")

    def update(step: str) -> None:
        status.update(f"querying ClickHouse: {step}")

    return status, update


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        from shadowstream.cli.output import err_console

        err_console.print(f"wrote {output}", highlight=False)
    else:
        click.echo(text, nl=not text.endswith("\n"))


@click.command()
@range_options
@click.option(
    "--challenger", "challengers", multiple=True, help="Only this challenger (repeatable)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to a file."
)
@click.option(
    "--section",
    type=click.Choice(["summary", "slices", "examples", "series"]),
    default="summary",
    show_default=True,
    help="Which table --format csv writes.",
)
@click.option(
    "--slices",
    "top_slices",
    type=click.IntRange(0, 1000),
    default=5,
    show_default=True,
    help="Top attribute slices per challenger.",
)
@click.option(
    "--min-slice",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Smallest slice (compared responses) worth ranking.",
)
@click.option(
    "--examples",
    type=click.IntRange(0, 1000),
    default=5,
    show_default=True,
    help="Recent divergent examples per challenger.",
)
@click.pass_context
def report(
    ctx: click.Context,
    since: str | None,
    start: str | None,
    end: str | None,
    experiment: str,
    control: str | None,
    exact: bool,
    clickhouse_url: str | None,
    challengers: tuple[str, ...],
    fmt: str,
    output: str | None,
    section: Any,
    top_slices: int,
    min_slice: int,
    examples: int,
) -> None:
    """Per-challenger comparison report, computed by SQL in ClickHouse.

    Divergence with 95% intervals and the noise floor, latency, failures, usage,
    the attribute slices where challengers diverge most, and recent examples.
    """
    from shadowstream.analytics.export import report_csv, report_json
    from shadowstream.analytics.queries import Scope
    from shadowstream.analytics.report import ReportOptions, build_report

    settings = load(ctx, clickhouse_url=clickhouse_url)
    window = time_range(since, start, end)
    options = ReportOptions(
        control=control_name(settings, control),
        challengers=challengers,
        slices_per_challenger=top_slices,
        min_slice_compared=min_slice,
        examples_per_challenger=examples,
        charts=fmt in ("html", "json"),
    )
    warehouse = open_settings_warehouse(settings, readonly=True)
    status, progress = _progress()
    with status:
        result = build_report(Scope(warehouse, window, experiment, exact), options, progress)
    if fmt == "table":
        _print_report(result, output)
    elif fmt == "json":
        _emit(report_json(result), output)
    elif fmt == "csv":
        _emit(report_csv(result, section), output)
    else:
        from shadowstream.analytics.html import render_html

        if not output:
            raise click.UsageError("--format html needs -o FILE")
        _emit(render_html(result), output)


def _print_report(result: Any, output: str | None) -> None:
    from rich.console import Console

    from shadowstream.cli.output import console, report_renderable

    if output:
        with open(output, "w", encoding="utf-8") as handle:
            Console(file=handle, width=160, no_color=True).print(report_renderable(result))
        return
    width = None if console.is_terminal else 160
    Console(width=width).print(report_renderable(result))


@click.command()
@range_options
@click.option(
    "--challenger", default=None, help="Gate this challenger (default: all but the control)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def gate(
    ctx: click.Context,
    since: str | None,
    start: str | None,
    end: str | None,
    experiment: str,
    control: str | None,
    exact: bool,
    clickhouse_url: str | None,
    challenger: str | None,
    fmt: str,
) -> None:
    """Promotion gate: exit 0 = promote, 1 = fail, 2 = not enough data yet.

    Thresholds come from the config ([gate] section: SHADOW_GATE__*). Each
    criterion is judged on a one-sided confidence bound, never a point estimate.
    """
    from rich.console import Console

    from shadowstream.analytics.export import gate_json
    from shadowstream.analytics.gate import overall_exit_code, run_gate
    from shadowstream.analytics.queries import Scope
    from shadowstream.cli.output import console, gate_table, gate_verdict

    settings = load(ctx, clickhouse_url=clickhouse_url)
    window = time_range(since, start, end)
    warehouse = open_settings_warehouse(settings, readonly=True)
    status, _ = _progress()
    with status:
        results = run_gate(
            Scope(warehouse, window, experiment, exact),
            settings.gate,
            control_name(settings, control),
            challenger,
            tuple(c.name for c in settings.challengers),
        )
    code = overall_exit_code(results)
    if fmt == "json":
        click.echo(gate_json(results, code))
    else:
        out = Console(width=None if console.is_terminal else 160)
        if not results:
            out.print("no challengers to gate (no comparisons in that range yet)")
        for result in results:
            out.print(gate_table(result))
            out.print(gate_verdict(result))
    sys.exit(code)
