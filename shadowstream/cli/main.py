"""``shadow``: run the pipeline, the demo, migrations and reports.

Errors a user can cause (bad config, unreachable store, unknown challenger)
end in one line on stderr with an exit code of their own
(:mod:`shadowstream.cli.exit_codes`: 3 usage/config, also an optional
dependency this install leaves out (the line names the extra), 4 store
unreachable, 5 other errors), never one of the verdict codes 0/1/2 of
``shadow gate``; tracebacks are for bugs only (``--debug`` shows them always).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.entry import EXIT_MISSING_EXTRA, missing_extra_message
from shadowstream.cli.safe_output import quiet_retries, redacted_excepthook
from shadowstream.core.errors import (
    ConfigError,
    NotFoundError,
    ShadowstreamError,
    WarehouseUnavailableError,
)

T = TypeVar("T")
log = logging.getLogger("shadow")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # libraries' retry chatter stays out of a command's one-line error (at the default level)
    root = logging.getLogger().level
    for noisy in ("faust", "mode", "aiokafka", "aiohttp", "kafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root))
    if root >= logging.WARNING:
        # a handler filter: clickhouse_connect sets urllib3's level itself when imported
        for handler in logging.getLogger().handlers:
            handler.addFilter(quiet_retries)
    from shadowstream.core.secrets import install_log_redaction

    install_log_redaction()  # no log line (tracebacks included) shows a secret
    for handler in logging.getLogger().handlers:
        handler.addFilter(_no_mode_crash_report)


def _no_mode_crash_report(record: logging.LogRecord) -> bool:
    """mode logs an agent's crash again ("Crashed reason=..." and "NoneType: None"):
    the agent has logged it once already, with what to do about it."""
    return not str(record.msg).endswith("Crashed reason=%r")


def fail(message: str, code: int = exit_codes.ERROR) -> NoReturn:
    try:
        from rich.markup import escape

        from shadowstream.cli.output import err_console
        from shadowstream.core.secrets import redact_text
    except ModuleNotFoundError:  # rich is missing: the message still goes out
        print(f"error: {message}", file=sys.stderr)
    else:
        # escaped: "pip install 'shadowstream[chdb]'" is not rich markup
        err_console.print(
            f"[bold red]error:[/] {escape(redact_text(message))}", highlight=False, soft_wrap=True
        )
    sys.exit(code)


def error_code(exc: ShadowstreamError) -> int:
    """The exit code of an error a user can cause (never a verdict's)."""
    own = getattr(exc, "exit_code", None)  # e.g. BrokerAuthError: Kafka refused us (3)
    if isinstance(own, int):
        return own
    if isinstance(exc, ConfigError | NotFoundError):
        return exit_codes.USAGE
    if isinstance(exc, WarehouseUnavailableError):
        return exit_codes.STORE_UNAVAILABLE
    return exit_codes.ERROR


class ShadowGroup(click.Group):
    """Turns Shadowstream errors into one-line messages and distinct exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShadowstreamError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            fail(str(exc), error_code(exc))
        except KeyboardInterrupt:
            fail("interrupted", exit_codes.INTERRUPTED)
        except ModuleNotFoundError as exc:  # an optional dependency this install leaves out
            message = missing_extra_message(exc)
            if message is None or (ctx.obj and ctx.obj.get("debug")):
                raise
            fail(message.removeprefix("shadow: "), EXIT_MISSING_EXTRA)

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's usage errors exit with 3, not click's 2 (2 is "not enough data")."""
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exit_codes.USAGE)
        except click.Abort:
            if not standalone_mode:
                raise
            click.echo("interrupted", err=True)
            sys.exit(exit_codes.INTERRUPTED)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``24h``, ``7d`` -> timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise click.BadParameter(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return dt.timedelta(seconds=value * seconds)


def parse_time(text: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO time like 2026-11-26T10:00, got {text!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@click.group(cls=ShadowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="SHADOW_CONFIG",
    help="TOML config file (default: $SHADOW_CONFIG, else ./shadow.toml). "
    "Env vars SHADOW_* override it.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
@click.option("--debug", is_flag=True, help="Show tracebacks for every error.")
@click.version_option(package_name="shadowstream")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, log_level: str, debug: bool) -> None:
    """Shadowstream: shadow testing for ML and LLM services on Kafka, Faust and ClickHouse.

    Start with `shadow demo`; see README.md for running it for real.

    Configuration: --config FILE, else $SHADOW_CONFIG, else ./shadow.toml if
    there is one (the file used is printed on stderr); SHADOW_* env vars and
    the --broker-url / --clickhouse-url options override it. Challenger
    callables (module:function) import from the working directory first.

    \b
    Exit codes: 0 promote (or success), 1 FAIL, 2 not enough data yet,
    3 usage or config error (also an --experiment/--challenger that matches
    nothing), 4 ClickHouse unreachable, 5 other error, 130 interrupted.
    """
    ctx.ensure_object(dict)
    import_from_working_directory()
    ctx.obj["config_file"] = config_file
    ctx.obj["debug"] = debug
    ctx.obj["log_level"] = log_level
    setup_logging("debug" if debug else log_level)


def import_from_working_directory() -> None:
    """Challenger callables (``my_models:fn``) import from the working directory first,
    as with uvicorn and gunicorn: the script's own path starts at the venv's bin."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def load(ctx: click.Context, **overrides: Any) -> Any:
    """The settings: --config, $SHADOW_CONFIG or ./shadow.toml, env vars, then these overrides
    (the connection options). Says on stderr which config file it read."""
    from shadowstream.core.config import find_config_file, load_settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    config_file = find_config_file(ctx.obj.get("config_file"))
    if config_file is not None and not ctx.obj.get("config_announced"):
        ctx.obj["config_announced"] = True
        click.echo(f"config: {config_file.resolve()}", err=True)
    return load_settings(config_file, **clean)


# -- demo -------------------------------------------------------------------------------------
@cli.command()
@click.option("--seconds", default=30.0, show_default=True, help="How long to send traffic.")
@click.option("--rate", default=150.0, show_default=True, help="Production requests per second.")
@click.option(
    "--data-dir",
    default="shadow-data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where chDB keeps the data (shadow report reads it afterwards).",
)
@click.option("--keep-data", is_flag=True, help="Add to the data of earlier demo runs.")
@click.option(
    "--scenario",
    type=click.Choice(["support", "retrieval"]),
    default="support",
    show_default=True,
    help="support: a ticket classifier and four challengers; retrieval: a rebuilt search "
    "index and a retrieval agent (ranked lists, resources, the projected bill).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="After the report, keep the pipeline (and traffic) up until Ctrl-C.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    seconds: float,
    rate: float,
    data_dir: str,
    keep_data: bool,
    keep_running: bool,
    scenario: str,
) -> None:
    """Everything on this machine: broker, agents, ClickHouse, traffic, then the report."""
    from shadowstream.cli.demo.run import run_demo

    if seconds <= 0 or rate <= 0:
        raise click.BadParameter("--seconds and --rate must be positive")
    run_async(
        run_demo(
            seconds=seconds,
            rate=rate,
            data_dir=Path(data_dir),
            keep_data=keep_data,
            keep_running=keep_running,
            scenario=scenario,
        )
    )


# -- running agents ----------------------------------------------------------------------------
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


def _run_roles(
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


@cli.command()
@create_topics_option
@connection_options
@click.pass_context
def run(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """All agents in one process: router, every challenger, the sink."""
    from shadowstream.pipeline.app import Roles

    _run_roles(ctx, Roles.everything, create_topics, **connection)


@cli.group()
def worker() -> None:
    """Run one agent role (scale a role by starting more of it)."""


@worker.command("router")
@create_topics_option
@connection_options
@click.pass_context
def worker_router(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """Fan-out + join: requests to challengers, responses into comparisons."""
    from shadowstream.pipeline.app import Roles

    _run_roles(ctx, lambda s: Roles(router=True), create_topics, **connection)


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

    _run_roles(ctx, roles, create_topics, **connection)


@worker.command("sink")
@create_topics_option
@connection_options
@click.pass_context
def worker_sink(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """Store comparisons and raw events in ClickHouse."""
    from shadowstream.pipeline.app import Roles

    _run_roles(ctx, lambda s: Roles(sink=True), create_topics, **connection)


@cli.command()
@click.option("--rate", default=100.0, show_default=True, help="Requests per second.")
@click.option("--seconds", default=0.0, help="Stop after this long (default: run until Ctrl-C).")
@click.option("--service", default="support-triage", show_default=True)
@connection_options
@click.pass_context
def traffic(
    ctx: click.Context, /, rate: float, seconds: float, service: str, **connection: Any
) -> None:
    """A synthetic production service emitting requests and champion responses."""
    from shadowstream.cli.demo.traffic import generate
    from shadowstream.cli.output import console
    from shadowstream.core.config import kafka_client_config
    from shadowstream.producers import ShadowEmitter

    settings = load(ctx, **connection)
    emitter = ShadowEmitter(
        settings.broker_url,
        service=service,
        champion_model="champion-v1",
        topic_prefix=settings.topic_prefix,
        # SASL / TLS: the options and the secrets, like every other client
        kafka_config=dict(kafka_client_config(settings).options),
        redaction=settings.redaction or None,
    )

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        task = asyncio.ensure_future(generate(emitter, rate=rate, seconds=seconds or 1e12))
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not task.done():
            task.cancel()
            return -1
        return task.result()

    run_async(go())
    emitter.close(10)
    stats = emitter.stats()
    console.print(f"emitted {stats.emitted:,} events, dropped {stats.dropped:,}")


@cli.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("create")
@connection_options
@click.pass_context
def topics_create(ctx: click.Context, /, **connection: Any) -> None:
    """Create every topic the pipeline uses (idempotent)."""
    from shadowstream.cli.output import console
    from shadowstream.pipeline.app import create_topics

    settings = load(ctx, **connection)
    created = create_topics(settings)
    console.print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@cli.command()
@click.option("--port", type=int, default=None, help="Port (default: a free one).")
def broker(port: int | None) -> None:
    """Run the embedded Kafka-compatible broker (memory only) until Ctrl-C."""
    import time

    from shadowstream.cli.output import console
    from shadowstream.pipeline.embedded import EmbeddedBroker

    with EmbeddedBroker(port=port) as embedded:
        console.print(f"broker ready: SHADOW_BROKER_URL={embedded.url}   (Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


# -- ClickHouse ----------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """ClickHouse schema."""


@db.command("migrate")
@connection_options
@click.pass_context
def db_migrate(ctx: click.Context, /, **connection: Any) -> None:
    """Create or upgrade the tables (idempotent; same SQL for chDB and a server)."""
    from shadowstream.cli.output import console
    from shadowstream.sinks.clickhouse.migrations import migrate, sync_retention
    from shadowstream.warehouse.owner import RemoteWarehouse

    settings = load(ctx, **connection)
    warehouse = open_settings_warehouse(settings, create=True)  # it sets the store up
    if isinstance(warehouse, RemoteWarehouse):
        # the running pipeline owns the chDB directory: it migrates, on request by name
        result = warehouse.call("migrate", {"retention_days": settings.retention_days})
        for table, days in result["retention"]:
            console.print(f"retention of {table}: {days} -> {settings.retention_days} days")
        for name in result["applied"]:
            console.print(f"applied {name}")
        if not result["applied"]:
            console.print(f"schema is up to date (retention {settings.retention_days} days)")
        return
    # existing tables first, so the TTL changes can be shown (migrate() aligns them too)
    for table, days in sync_retention(warehouse, settings.retention_days):
        console.print(f"retention of {table}: {days} -> {settings.retention_days} days")
    applied = migrate(warehouse, settings.retention_days)
    for m in applied:
        console.print(f"applied {m.version:04d}_{m.name}")
    if not applied:
        console.print(f"schema is up to date (retention {settings.retention_days} days)")


@cli.command("config")
@connection_options
@click.pass_context
def show_config(ctx: click.Context, /, **connection: Any) -> None:
    """Print the effective configuration (secrets redacted)."""
    import json

    from shadowstream.core.secrets import MASK, redact_mapping

    settings = load(ctx, **connection)
    data = settings.model_dump(mode="json")
    data["kafka_secrets"] = {k: MASK for k in data.get("kafka_secrets", {})}
    for challenger in data.get("challengers", []):
        http = challenger.get("http") or {}
        # static header values are shown masked whatever their name: any can be a credential
        http["headers"] = {k: MASK for k in http.get("headers", {})}
    shown = redact_mapping(data)
    pairs = zip(shown.get("challengers", []), data.get("challengers", []), strict=True)
    for challenger, original in pairs:
        if challenger.get("http"):
            # env var names (the values stay in the environment): shown as they are
            challenger["http"]["headers_from_env"] = original["http"]["headers_from_env"]
    click.echo(json.dumps(shown, indent=2))


def _register_commands() -> None:
    from shadowstream.cli.commands import analytics, batch, judge, schemas, show, watch

    analytics.register(cli)
    batch.register(cli)
    judge.register(cli)
    schemas.register(cli)
    show.register(cli)
    watch.register(cli)


_register_commands()


def main() -> None:
    sys.excepthook = redacted_excepthook
    cli(prog_name="shadow")


if __name__ == "__main__":
    main()
