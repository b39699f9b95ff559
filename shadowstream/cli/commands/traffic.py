"""``shadow traffic``: a synthetic production service emitting requests and champion responses."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import click

from shadowstream.cli.connection import connection_options
from shadowstream.cli.context import load, run_async


def register(cli: click.Group) -> None:
    cli.add_command(traffic)


@click.command()
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
