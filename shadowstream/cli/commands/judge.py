"""``shadow worker judge``: the LLM judge agent as a process of its own (scale: start more)."""

from __future__ import annotations

from typing import Any

import click

from shadowstream.cli.commands.agents import create_topics_option
from shadowstream.cli.connection import connection_options
from shadowstream.core.errors import ConfigError


def register(cli: click.Group) -> None:
    worker = cli.commands["worker"]
    assert isinstance(worker, click.Group)
    worker.add_command(worker_judge)


@click.command("judge")
@create_topics_option
@connection_options
@click.pass_context
def worker_judge(ctx: click.Context, /, create_topics: bool, **connection: Any) -> None:
    """Ask the LLM judge about the pairs the router left to it (comparator `judge`).

    Verdicts (better / same / worse / undecided) and rationales are stored with
    the comparisons; `shadow report` shows them. `shadow run` includes this
    agent when a challenger's comparator has a judge.
    """
    from shadowstream.cli.commands.agents import run_roles
    from shadowstream.pipeline.app import Roles
    from shadowstream.stream_agents.judge import configured_judges

    def roles(settings: Any) -> Any:
        if not configured_judges(settings):
            raise ConfigError(
                "no challenger's comparator has a judge step (comparator kind 'judge', or the "
                "last step of a cascade): nothing for the judge agent to do"
            )
        return Roles(judge=True)

    run_roles(ctx, roles, create_topics, **connection)
