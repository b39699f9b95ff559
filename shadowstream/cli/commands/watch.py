"""``shadow watch``: continuous, peek-proof monitoring of every challenger."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from typing import Any

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.commands.analytics import check_names, control_names
from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.cli.context import load
from shadowstream.cli.parsing import parse_duration, parse_time


def register(cli: click.Group) -> None:
    cli.add_command(watch)


def _start(start: str | None) -> dt.datetime:
    from shadowstream.analytics.queries import EPOCH

    return parse_time(start) if start else EPOCH


@click.command(epilog=exit_codes.HELP)
@click.option(
    "--interval",
    default=None,
    help="Time between checks (30s, 5m; default: [watch] interval_seconds, 60s).",
)
@click.option(
    "--checks",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many checks and exit with the last verdicts' code "
    "(default: run until Ctrl-C).",
)
@click.option(
    "--from",
    "start",
    default=None,
    help="Watch comparisons from this time on (ISO 8601, UTC unless given; fixed, never "
    "sliding; default: all of them).",
)
@click.option("--experiment", default="", help="Only this experiment (live or a batch id).")
@click.option(
    "--challenger",
    "challengers",
    multiple=True,
    help="Watch this challenger (repeatable; default: all but the controls).",
)
@click.option(
    "--control",
    default=None,
    help="The A/A control (default: those with control = true, each challenger paired "
    "with its own endpoint group's; else 'control').",
)
@click.option(
    "--webhook",
    default=None,
    help="POST every verdict change and regression here (default: [watch] webhook_url, "
    "SHADOW_WATCH__WEBHOOK_URL; prefer the env var: the URL is a secret).",
)
@click.option(
    "--webhook-format",
    type=click.Choice(["json", "slack"]),
    default=None,
    help="json: the event as is; slack: a Slack incoming-webhook message "
    "(default: [watch] webhook_format).",
)
@connection_options
@click.pass_context
def watch(
    ctx: click.Context,
    /,
    interval: str | None,
    checks: int | None,
    start: str | None,
    experiment: str,
    challengers: tuple[str, ...],
    control: str | None,
    webhook: str | None,
    webhook_format: str | None,
    **connection: Any,
) -> None:
    """Re-evaluate every challenger on an interval; print, record and notify changes.

    Same criteria and thresholds as `shadow gate` ([gate]), but judged with
    anytime-valid confidence sequences, so looking every minute for a week
    raises no more false alarms than looking once: a challenger no worse than
    its baseline alarms (FAIL or regression) with probability at most
    1 - [watch] confidence over the whole watch. Verdict changes and
    regressions (confidently worse than its own baseline, even within the
    thresholds) are printed, stored in ClickHouse (watch_events) and POSTed to
    the webhook. Method and references: docs/watch.md.
    """
    from rich.markup import escape

    from shadowstream.analytics.watch import Watch
    from shadowstream.cli.output import console, err_console

    settings = load(ctx, **connection)
    every = (
        parse_duration(interval).total_seconds() if interval else settings.watch.interval_seconds
    )
    if every < 1:
        raise click.BadParameter("the interval must be at least 1s", param_hint="--interval")
    since = _start(start)
    warehouse = open_settings_warehouse(settings)
    check_names(warehouse, settings, experiment, challengers)
    notifier = _notifier(settings, webhook, webhook_format)
    runner = Watch(
        warehouse,
        settings.gate,
        settings.watch,
        control_names(settings, control),
        challengers=challengers,
        configured=[c.name for c in settings.challengers],
        experiment=experiment,
        since=since,
        notifier=notifier,
    )
    restored = runner.restore()
    err_console.print(
        f"watching every {every:g}s (anytime-valid, {settings.watch.confidence:.0%} over the "
        f"whole watch){f'; {restored} challengers known from earlier watches' if restored else ''}"
        f"{f'; webhook to {notifier.host}' if notifier else ''}",
        highlight=False,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    done = 0
    try:
        while True:
            for event in runner.check():
                style = "bold red" if event.alarm else "bold"
                console.print(
                    f"{event.at:%Y-%m-%d %H:%M:%S}  [{style}]{escape(event.summary)}[/]",
                    highlight=False,
                    soft_wrap=True,
                )
            done += 1
            if (checks is not None and done >= checks) or stop.wait(every):
                break
    finally:
        signal.signal(signal.SIGTERM, previous)
        if notifier is not None:
            notifier.close()
    sys.exit(runner.exit_code)


def _notifier(settings: Any, url: str | None, body_format: str | None) -> Any:
    from shadowstream.analytics.notify import WebhookNotifier

    secret = settings.watch.webhook_url
    target = url or (secret.get_secret_value() if secret else None)
    if not target:
        return None
    try:
        return WebhookNotifier(
            target,
            body_format or settings.watch.webhook_format,  # type: ignore[arg-type]
            settings.watch.webhook_timeout_seconds,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--webhook") from None
