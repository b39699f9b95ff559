"""``shadow config``: the effective configuration, secrets redacted."""

from __future__ import annotations

from typing import Any

import click

from shadowstream.cli.connection import connection_options
from shadowstream.cli.context import load


def register(cli: click.Group) -> None:
    cli.add_command(show_config)


@click.command("config")
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
