"""Kafka: ``shadow topics create`` and ``shadow broker`` (the embedded broker)."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from shadowstream.cli.connection import connection_options
from shadowstream.cli.context import load


def register(cli: click.Group) -> None:
    cli.add_command(topics)
    cli.add_command(broker)


@click.group()
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


@click.command()
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
