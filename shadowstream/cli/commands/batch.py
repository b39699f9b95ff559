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
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.commands.batch_progress import ProgressView, print_plan, print_result
from shadowstream.cli.commands.batch_providers import (
    cancel_provider_batches,
)
from shadowstream.cli.commands.batch_status import status
from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.context import load
from shadowstream.cli.parsing import parse_duration, parse_time
from shadowstream.core.errors import ExperimentError

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


batch.add_command(status)  # shadow batch status (batch_status.py)


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
    print_plan(plan)
    result = asyncio.run(_execute(settings, store, plan, options))
    print_result(result)
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
    view = ProgressView()
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
