"""``shadow``: run the pipeline, the demo, migrations and reports.

Errors a user can cause (bad config, unreachable store, unknown challenger)
end in one line on stderr with an exit code of their own
(:mod:`shadowstream.cli.exit_codes`: 3 usage/config, also an optional
dependency this install leaves out (the line names the extra), 4 store
unreachable, 5 other errors), never one of the verdict codes 0/1/2 of
``shadow gate``; tracebacks are for bugs only (``--debug`` shows them always).

Each command lives in its own module under :mod:`shadowstream.cli.commands`,
registered below with one line.
"""

from __future__ import annotations

import sys

import click

from shadowstream.cli.command_group import ShadowGroup, error_code, fail
from shadowstream.cli.context import import_from_working_directory, load, run_async
from shadowstream.cli.logging_setup import setup_logging
from shadowstream.cli.parsing import parse_duration, parse_time
from shadowstream.cli.safe_output import redacted_excepthook

# what commands and tests imported from here before the split
__all__ = [
    "ShadowGroup",
    "cli",
    "error_code",
    "fail",
    "load",
    "main",
    "parse_duration",
    "parse_time",
    "run_async",
    "setup_logging",
]


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


def _register_commands() -> None:
    from shadowstream.cli.commands import (
        agents,
        analytics,
        batch,
        config,
        db,
        demo,
        judge,
        kafka,
        schemas,
        show,
        traffic,
        watch,
    )

    agents.register(cli)
    analytics.register(cli)
    batch.register(cli)
    config.register(cli)
    db.register(cli)
    demo.register(cli)
    judge.register(cli)
    kafka.register(cli)
    schemas.register(cli)
    show.register(cli)
    traffic.register(cli)
    watch.register(cli)


_register_commands()


def main() -> None:
    sys.excepthook = redacted_excepthook
    cli(prog_name="shadow")


if __name__ == "__main__":
    main()
