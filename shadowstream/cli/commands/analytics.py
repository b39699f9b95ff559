"""Analytics commands: ``shadow report`` and the promotion gate ``shadow gate``."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.context import load
from shadowstream.cli.parsing import parse_duration, parse_time


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


def control_names(settings: Any, option: str | None) -> tuple[str, ...]:
    """--control, else every challenger flagged ``control = true`` (config order), else
    "control". With several, each challenger gets its own endpoint group's."""
    if option:
        return (option,)
    flagged = tuple(c.name for c in settings.challengers if c.control)
    return flagged or ("control",)


def check_names(
    warehouse: Any, settings: Any, experiment: str, challengers: tuple[str, ...]
) -> None:
    """An --experiment or --challenger that matches nothing is an error naming what exists."""
    from shadowstream.analytics.catalog import check_selection, load_catalog
    from shadowstream.analytics.queries import require_schema

    if not experiment and not challengers:
        return
    require_schema(warehouse)
    configured = [c.name for c in settings.challengers]
    check_selection(load_catalog(warehouse), experiment, challengers, configured)


def resource_options(
    settings: Any, limits: tuple[str, ...] = (), slices: int = 5, min_slice: int = 30
) -> Any:
    """Limits ([resources] limits, overridden by --limit), configured sample rates, pricing;
    --slices / --min-slice apply to the measure and resource slices too."""
    from shadowstream.analytics.resources import ResourceOptions

    merged = dict(settings.resources.limits)
    for item in limits:
        metric, _, value = item.partition("=")
        if metric not in ("tokens_in", "tokens_out", "tool_calls", "cost") or not value:
            raise click.BadParameter(
                f"{item!r}: expected METRIC=VALUE, METRIC one of tokens_in, tokens_out, "
                "tool_calls, cost",
                param_hint="--limit",
            )
        try:
            merged[metric] = float(value)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: {value!r} is not a number", param_hint="--limit"
            ) from None
    return ResourceOptions(
        limits=merged,
        sample_rates={c.name: c.sample_rate for c in settings.challengers},
        batch_price_factor=settings.resources.batch_price_factor,
        days_per_month=settings.resources.days_per_month,
        min_slice_n=min_slice,
        slices_per_metric=slices,
    )


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
                help="The A/A control challenger (default: those with control = true, each "
                "challenger paired with its own endpoint group's; else 'control').",
            ),
            click.option(
                "--exact",
                is_flag=True,
                help="Recompute from comparisons FINAL instead of the rollups (slow; a check).",
            ),
        ]
    ):
        fn = option(fn)
    return connection_options(fn)


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
    type=click.Choice(
        [
            *("summary", "slices", "examples", "series"),
            *("measures", "measure_slices", "resources", "resource_slices", "projection"),
        ]
    ),
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
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Share of responses above VALUE (tokens_in, tokens_out, tool_calls, cost); "
    "repeatable, overrides [resources] limits.",
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
    broker_url: str | None,
    clickhouse_url: str | None,
    challengers: tuple[str, ...],
    fmt: str,
    output: str | None,
    section: Any,
    top_slices: int,
    min_slice: int,
    examples: int,
    limits: tuple[str, ...],
) -> None:
    """Per-challenger comparison report, computed by SQL in ClickHouse.

    Divergence with 95% intervals and the noise floor, latency, failures, usage,
    the attribute slices where challengers diverge most, and recent examples.
    """
    from shadowstream.analytics.export import report_csv, report_json
    from shadowstream.analytics.queries import Scope
    from shadowstream.analytics.report import ReportOptions, build_report

    settings = load(ctx, broker_url=broker_url, clickhouse_url=clickhouse_url)
    window = time_range(since, start, end)
    controls = control_names(settings, control)
    options = ReportOptions(
        control=controls[0],
        controls=controls,
        challengers=challengers,
        slices_per_challenger=top_slices,
        min_slice_compared=min_slice,
        examples_per_challenger=examples,
        charts=fmt in ("html", "json"),
        trace_url=settings.trace_url_template,
        resources=resource_options(settings, limits, top_slices, min_slice),
        sides=fmt in ("html", "json"),  # the examples' answers side by side
        live_prices={  # batch runs priced against these when no live traffic is in range
            c.name: (c.cost_per_1k_tokens_in, c.cost_per_1k_tokens_out)
            for c in settings.challengers
            if c.cost_per_1k_tokens_in is not None or c.cost_per_1k_tokens_out is not None
        },
    )
    warehouse = open_settings_warehouse(settings, readonly=True)
    check_names(warehouse, settings, experiment, challengers)
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


@click.command(epilog=exit_codes.HELP)
@range_options
@click.option(
    "--challenger",
    "challengers",
    multiple=True,
    help="Gate this challenger (repeatable; default: all but the controls).",
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
    broker_url: str | None,
    clickhouse_url: str | None,
    challengers: tuple[str, ...],
    fmt: str,
) -> None:
    """Promotion gate: exit 0 = promote, 1 = fail, 2 = not enough data yet.

    Thresholds come from the config ([gate] section: SHADOW_GATE__*); the
    defaults are explained in docs/decisions.md. Each criterion is judged on a
    one-sided confidence bound, never a point estimate, and each challenger
    against its own endpoint group's A/A control. With several challengers:
    1 if any fails, else 2 if any waits, else 0.
    """
    from rich.console import Console

    from shadowstream.analytics.export import gate_json
    from shadowstream.analytics.gate import overall_exit_code, run_gate
    from shadowstream.analytics.queries import Scope
    from shadowstream.cli.gate_output import gate_table, gate_verdict
    from shadowstream.cli.output import console

    settings = load(ctx, broker_url=broker_url, clickhouse_url=clickhouse_url)
    window = time_range(since, start, end)
    warehouse = open_settings_warehouse(settings, readonly=True)
    configured = tuple(c.name for c in settings.challengers)
    check_names(warehouse, settings, experiment, challengers)
    status, _ = _progress()
    with status:
        results = run_gate(
            Scope(warehouse, window, experiment, exact),
            settings.gate,
            control_names(settings, control),
            challengers or None,
            configured,
            resources=resource_options(settings),
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
