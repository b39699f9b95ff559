"""Running the pipeline's agents: ``shadow run`` (all in one process) and ``shadow worker
router|challenger|sink`` (one role per process, scaled by starting more)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.connection import connection_options
from shadowstream.cli.context import load, run_async


def register(cli: click.Group) -> None:
    cli.add_command(run)
    cli.add_command(worker)


async def _serve(pipeline: Any, settings: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await pipeline.start()
    if not any(s.failure for s in pipeline.services):
        # a status line for people (not a warning), whatever the log level
        base = f"http://{settings.web_host}:{pipeline.web_port}"
        click.echo(
            f"{pipeline.roles.label()} running (metrics: {base}/metrics, health: {base}/readyz)",
            err=True,
        )
    crashed = False
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        if any(s.crashed for s in pipeline.services) or pipeline.app.crashed:
            crashed = True
            break
    await pipeline.stop()
    return exit_codes.ERROR if crashed else 0


def run_roles(
    ctx: click.Context, /, roles_factory: Callable[[Any], Any], create: bool, **connection: Any
) -> None:
    from shadowstream.core.config import kafka_client_config
    from shadowstream.core.kafka import wait_for_broker
    from shadowstream.pipeline.app import Pipeline, create_topics

    settings = load(ctx, **connection)
    roles = roles_factory(settings)
    # reachable, and these credentials accepted: else one line now, not a retry log later
    wait_for_broker(kafka_client_config(settings), timeout=30.0)
    if create:
        create_topics(settings)
    pipeline = Pipeline(settings, roles, recreate_topics=create)
    code = run_async(_serve(pipeline, settings))
    if code:
        code = _report_failure(pipeline)
    # Everything is committed and closed by now. Leave even if a library thread
    # that failed during a crashed start-up would keep the interpreter alive:
    # a supervisor must see the process end to restart it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _report_failure(pipeline: Any) -> int:
    """One line on stderr, with the advice that fits; the exit code of a configuration
    mistake (3) or of any other error (5)."""
    from shadowstream.cli.output import err_console
    from shadowstream.runtime.agent import is_config_error

    failed = [s for s in pipeline.services if s.failure is not None]
    config = [s for s in failed if is_config_error(s.failure)]
    what = "; ".join(f"{s.agent_name}: {s.failure}" for s in (config or failed))
    if config:
        advice = "fix the configuration and start again (a restart alone will not help)"
    else:
        advice = "a restart resumes from committed offsets"
    err_console.print(
        f"[bold red]error:[/] {'cannot run' if config else 'an agent crashed'} "
        f"({what or 'see the log above'}); {advice}",
        highlight=False,
        soft_wrap=True,
    )
    return exit_codes.USAGE if config else exit_codes.ERROR


create_topics_option = click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing topics first (all with the configured partition count).",
)


@click.command()
@create_topics_option
@connection_options
@click.pass_context
def run(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """All agents in one process: router, every challenger, the sink."""
    from shadowstream.pipeline.app import Roles

    run_roles(ctx, Roles.everything, create_topics, **connection)


@click.group()
def worker() -> None:
    """Run one agent role (scale a role by starting more of it)."""


@worker.command("router")
@create_topics_option
@connection_options
@click.pass_context
def worker_router(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """Fan-out + join: requests to challengers, responses into comparisons."""
    from shadowstream.pipeline.app import Roles

    run_roles(ctx, lambda s: Roles(router=True), create_topics, **connection)


@worker.command("challenger")
@click.option("--name", "names", multiple=True, required=True, help="Challenger name (repeatable).")
@create_topics_option
@connection_options
@click.pass_context
def worker_challenger(
    ctx: click.Context, /, names: tuple[str, ...], create_topics: bool, **connection: Any
) -> None:
    """Call a challenger model for the requests sent to it (own consumer group)."""
    from shadowstream.pipeline.app import Roles

    def roles(settings: Any) -> Any:
        for name in names:
            settings.challenger(name)  # unknown name: one-line error
        return Roles(challengers=list(names))

    run_roles(ctx, roles, create_topics, **connection)


@worker.command("sink")
@create_topics_option
@connection_options
@click.pass_context
def worker_sink(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """Store comparisons and raw events in ClickHouse."""
    from shadowstream.pipeline.app import Roles

    run_roles(ctx, lambda s: Roles(sink=True), create_topics, **connection)
