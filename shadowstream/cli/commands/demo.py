"""``shadow demo``: everything on this machine, then the report and the gate."""

from __future__ import annotations

from pathlib import Path

import click

from shadowstream.cli.context import run_async


def register(cli: click.Group) -> None:
    cli.add_command(demo)


@click.command()
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
