"""``shadow batch``: replay captured traffic or an eval set through challengers.

    shadow batch run --challenger fast --source captured --since 1h --attr language=de
    shadow batch run --challenger fast --source evals/support.jsonl --endpoint /v1/classify
    shadow batch run --resume batch-20261126-2305-7f3a
    shadow batch status [ID]
    shadow batch cancel ID

The pipeline (router, challenger workers, sink) must be running: a batch run
only submits requests and follows their results. With the embedded chDB
store, the commands reach ClickHouse through the pipeline process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from shadowstream.cli import exit_codes
from shadowstream.cli.commands.batch_providers import (
    cancel_provider_batches,
    chunk_json,
    chunks_table,
    provider_chunks,
)
from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.context import load
from shadowstream.cli.parsing import parse_duration, parse_time
from shadowstream.core.errors import ExperimentError, NotFoundError

CAPTURED = ("captured", "clickhouse")


def register(cli: click.Group) -> None:
    cli.add_command(batch)


@click.group()
@click.pass_context
def batch(ctx: click.Context) -> None:
    """Batch experiments: replay captured traffic or an eval set through challengers.

    Results are compared, stored and reported like live traffic, under the
    run's experiment id: `shadow report --experiment ID`.
    """
    if not (ctx.obj or {}).get("debug") and (ctx.obj or {}).get("log_level") != "debug":
        # broker trouble ends in one error line of ours, not in librdkafka's retry log
        logging.getLogger("shadowstream.librdkafka").setLevel(logging.CRITICAL)


# -- run --------------------------------------------------------------------------------------
@batch.command("run")
@click.option("--challenger", "challengers", multiple=True, help="Challenger (repeatable).")
@click.option(
    "--source",
    default=None,
    help="'captured' (traffic stored in ClickHouse) or an eval file (.jsonl or Avro container).",
)
@click.option("--since", default=None, help="Captured: the last DURATION (30m, 24h, 7d).")
@click.option("--from", "start", default=None, help="Captured: start time (ISO 8601, UTC).")
@click.option("--to", "end", default=None, help="Captured: end time (ISO 8601; default now).")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    help="Captured: only these endpoints (repeatable; * and ? wildcards). "
    "Eval file: the endpoint of items that name none (default 'eval').",
)
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Only items with this attribute value (repeatable; values of one name are OR-ed).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N items.")
@click.option(
    "--fraction",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=None,
    help="A deterministic sample of this fraction of the items (by id).",
)
@click.option("--experiment", default=None, help="Experiment id (default: generated).")
@click.option("--resume", default=None, metavar="ID", help="Continue a stored run.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Requests per second at most  [default: 50; 1000 when every challenger answers "
    "through its batch API; on --resume: the run's]",
)
@click.option(
    "--no-batch-api",
    is_flag=True,
    help="Call challengers that have a batch_api live, like the others (batch-only "
    "challengers still use their batch API).",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="Upper bound of the requests awaiting results (the window adapts below it).",
)
@click.option(
    "--reference-model",
    default="reference",
    show_default=True,
    help="Eval file: model name of the reference outputs.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Return once everything is submitted (provider batches: once they are created; "
    "--resume collects their results).",
)
@click.option(
    "--retry-not-routed",
    is_flag=True,
    help="Resuming: also re-submit items the router left out last time (after raising a "
    "challenger's max_rps or budget; the router ignores them until its late retention passed).",
)
@connection_options
@click.pass_context
def run(ctx: click.Context, /, **options: Any) -> None:
    """Submit a batch run and follow it until every comparison is in.

    Each item becomes a request `<experiment>:<item id>` tagged with the
    experiment; its reference (the champion's stored answer, or the eval
    file's reference output) is submitted as the champion's response. Items
    without a reference are compared as `champion_missing` once the join
    window closes: their challenger latency, status and format still count.

    Ctrl-C stops submitting; `--resume ID` (or the same command with
    `--experiment ID`) submits every item that has no comparison yet, and
    nothing is compared twice.
    """
    from shadowstream.experiments.planning import default_rate, plan_resume, plan_run
    from shadowstream.experiments.store import ExperimentStore

    settings = load(ctx, broker_url=options["broker_url"], clickhouse_url=options["clickhouse_url"])
    if options["resume"]:
        _no_source_options_with_resume(options)
        store = ExperimentStore(_open_for_run(settings))
        plan = plan_resume(settings, store, options["resume"], options["rate"])
    else:
        if not options["challengers"] or not options["source"]:
            raise click.UsageError("give --challenger and --source (or --resume ID)")
        make_source = _source_factory(options)  # option and file mistakes before anything else
        store = ExperimentStore(_open_for_run(settings))
        use_batch_api = not options["no_batch_api"]
        plan = plan_run(
            settings,
            store,
            challengers=options["challengers"],
            source=make_source(store.warehouse),
            rate=options["rate"] or default_rate(settings, options["challengers"], use_batch_api),
            experiment_id=options["experiment"],
        )
    if plan.record.total == 0:
        raise ExperimentError(f"nothing to replay: no items in {plan.source.describe()}")
    _print_plan(plan)
    result = asyncio.run(_execute(settings, store, plan, options))
    _print_result(result)
    if result.status == "interrupted":
        sys.exit(130)
    if result.status == "incomplete":
        sys.exit(exit_codes.ERROR)


def _open_for_run(settings: Any) -> Any:
    from shadowstream.warehouse.client import chdb_path
    from shadowstream.warehouse.owner import live_owner

    path = chdb_path(settings.clickhouse_url)
    if path is not None and live_owner(path) is None:
        raise ExperimentError(
            f"no running pipeline owns {settings.clickhouse_url}: start it first "
            "(`shadow run`, or `shadow demo --keep-running`); it answers, compares and "
            "stores the batch"
        )
    return open_settings_warehouse(settings)


SOURCE_OPTIONS = {
    "challengers": "--challenger",
    "source": "--source",
    "since": "--since",
    "start": "--from",
    "end": "--to",
    "endpoints": "--endpoint",
    "attrs": "--attr",
    "limit": "--limit",
    "fraction": "--fraction",
    "experiment": "--experiment",
}


def _no_source_options_with_resume(options: dict[str, Any]) -> None:
    given = [flag for name, flag in SOURCE_OPTIONS.items() if options[name] not in (None, ())]
    if given:
        raise click.UsageError(
            "--resume continues a run with its stored source and challengers; "
            f"drop {', '.join(given)}"
        )


def _source_factory(options: dict[str, Any]) -> Callable[[Any], Any]:
    """Check the source options (and read an eval file through) before anything else runs."""
    from shadowstream.experiments.filters import ItemFilter, parse_attribute_filters
    from shadowstream.experiments.sources import CapturedTraffic, EvalFile, ItemDefaults

    attributes = parse_attribute_filters(options["attrs"])
    source = options["source"]
    if source in CAPTURED:
        since, until = _time_range(options)
        captured_filter = ItemFilter(
            tuple(options["endpoints"]), attributes, options["fraction"] or 1.0, options["limit"]
        )
        return lambda warehouse: CapturedTraffic(warehouse, since, until, captured_filter)
    if options["since"] or options["start"] or options["end"]:
        raise click.UsageError("--since/--from/--to select captured traffic, not an eval file")
    path = Path(source).expanduser()
    if not path.is_file():
        raise click.BadParameter(
            f"{source!r} is neither 'captured' nor an existing file", param_hint="--source"
        )
    if len(options["endpoints"]) > 1:
        raise click.UsageError("an eval file takes at most one --endpoint (for items without one)")
    item_filter = ItemFilter((), attributes, options["fraction"] or 1.0, options["limit"])
    defaults = ItemDefaults(
        options["endpoints"][0] if options["endpoints"] else "eval", options["reference_model"]
    )
    eval_file = EvalFile(path.resolve(), item_filter, defaults)
    eval_file.scan()
    return lambda warehouse: eval_file


def _time_range(options: dict[str, Any]) -> tuple[int, int]:
    now = dt.datetime.now(dt.UTC)
    if options["since"] and options["start"]:
        raise click.UsageError("give --since or --from, not both")
    if options["since"]:
        start = now - parse_duration(options["since"])
    elif options["start"]:
        start = parse_time(options["start"])
    else:
        raise click.UsageError("captured traffic needs a time range: --since 1h, or --from/--to")
    end = min(parse_time(options["end"]), now) if options["end"] else now
    if end <= start:
        raise click.UsageError("the time range is empty (--to is not after the start)")
    return int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)


async def _execute(settings: Any, store: Any, plan: Any, options: dict[str, Any]) -> Any:
    from shadowstream.experiments.runner import BatchRunner, RunOptions

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first_signal(sig: signal.Signals) -> None:
        stop.set()  # finish cleanly: flush, record, store the status
        loop.remove_signal_handler(sig)  # a second Ctrl-C stops at once

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, first_signal, sig)
    view = _ProgressView()
    runner = BatchRunner(
        settings,
        store,
        plan,
        RunOptions(
            max_in_flight=options["max_in_flight"],
            wait=not options["no_wait"],
            retry_not_routed=options["retry_not_routed"],
            use_batch_api=not options["no_batch_api"],
        ),
        on_progress=view.update,
        stop=stop,
    )
    with view:
        return await runner.run()


# -- progress ---------------------------------------------------------------------------------
class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        shown = f"{speed:,.0f}" if speed >= 10 else f"{speed:.1f}"
        return Text(f"{shown}/s", style="progress.data.speed")


class _ProgressView:
    """Two bars: requests submitted, and results (compared, or known never to come)."""

    def __init__(self) -> None:
        from shadowstream.cli.output import console

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<10}"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}", style="dim"),
            console=console,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, p: Any) -> None:
        r = p.results
        submit_detail = f"{r.in_flight:,} in flight (≤{p.in_flight_limit:,}, ≤{p.rate:g}/s)"
        result_detail = f"{r.compared:,} compared, {r.failed:,} failed"
        if r.unrouted:
            result_detail += f", {r.unrouted:,} not routed"
        if r.skipped:
            result_detail += f", {r.skipped:,} skipped"
        if not self.tasks:
            self.tasks["submit"] = self.progress.add_task(
                "submitted", total=p.to_submit, detail=submit_detail
            )
            self.tasks["results"] = self.progress.add_task(
                "results", total=p.expected, completed=r.final, detail=result_detail
            )
        self.progress.update(
            self.tasks["submit"], completed=p.submitted, total=p.to_submit, detail=submit_detail
        )
        self.progress.update(self.tasks["results"], completed=r.final, detail=result_detail)
        for provider in p.providers:
            key = f"provider:{provider.challenger}"
            done = provider.succeeded + provider.errored + provider.expired + provider.cancelled
            detail = (
                f"{provider.provider}: {provider.ended}/{provider.batches} batches ended "
                f"({provider.statuses}); {provider.errored:,} errored, {provider.expired:,} expired"
            )
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(
                    provider.challenger[:10], total=provider.requests, detail=detail
                )
            self.progress.update(
                self.tasks[key], completed=done, total=provider.requests, detail=detail
            )


def _print_plan(plan: Any) -> None:
    from shadowstream.cli.output import console

    record = plan.record
    verb = "resuming" if plan.resumed else "starting"
    console.print(
        f"{verb} batch run [bold]{record.experiment_id}[/]: {record.total:,} items from "
        f"{record.source} through {', '.join(record.challengers)}",
        highlight=False,
    )
    if record.source_kind == "eval":
        scanned = plan.source.scan()
        missing = scanned.items - scanned.with_reference
        if missing:
            console.print(
                f"  {missing:,} of {scanned.items:,} items have no reference: they are compared "
                "as champion_missing after the join window (challenger latency, status, format)",
                style="dim",
                highlight=False,
            )
    for note in plan.notes:
        console.print(f"  note: {note}", style="dim", highlight=False)


def _print_result(result: Any) -> None:
    from shadowstream.cli.output import console

    record, p = result.record, result.progress
    r = p.results
    run_id = record.experiment_id
    console.print(
        f"{run_id}: [bold]{record.status}[/] - {p.submitted:,} submitted now "
        f"({p.already_done:,} already done), {r.compared:,}/{p.expected:,} compared, "
        f"{r.failed:,} failed",
        highlight=False,
    )
    if record.message:
        console.print(f"  {record.message}", highlight=False)
    if record.status in ("interrupted", "incomplete", "cancelled"):
        console.print(f"  continue with: shadow batch run --resume {run_id}", highlight=False)
    console.print(
        f"  report: shadow report --experiment {run_id}    status: shadow batch status {run_id}",
        style="dim",
        highlight=False,
    )


# -- status -----------------------------------------------------------------------------------
@batch.command("status")
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
    from shadowstream.experiments.store import ExperimentStore

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
        if runs[0].status in ("interrupted", "incomplete", "cancelled"):
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


# -- cancel -----------------------------------------------------------------------------------
@batch.command("cancel")
@click.argument("experiment_id")
@connection_options
@click.pass_context
def cancel(
    ctx: click.Context, experiment_id: str, broker_url: str | None, clickhouse_url: str | None
) -> None:
    """Cancel a run: the router stops fanning it out, workers skip its requests,
    and its provider batches that have not ended are cancelled at the provider."""
    from shadowstream.cli.output import console
    from shadowstream.experiments.control import cancel_run
    from shadowstream.experiments.store import COMPLETED, ExperimentStore

    settings = load(ctx, broker_url=broker_url, clickhouse_url=clickhouse_url)
    store = ExperimentStore(open_settings_warehouse(settings))
    store.require_schema()
    record = cancel_run(settings, store, experiment_id)
    if record.status == COMPLETED:
        console.print(f"{experiment_id} is already completed: nothing to cancel", highlight=False)
        return
    console.print(
        f"cancelled {record.experiment_id}: workers skip its remaining requests "
        f"(resume later with: shadow batch run --resume {record.experiment_id})",
        highlight=False,
    )
    cancel_provider_batches(settings, store, experiment_id)
