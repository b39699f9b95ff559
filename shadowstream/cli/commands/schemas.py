"""``shadow schemas``: the event schemas on the schema topic (list, check, publish).

Exit codes (shadowstream.cli.exit_codes): 0 fine; 1 a schema breaks the
evolution rules; 3 a usage or configuration error (an unreadable schema file);
5 the broker failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from shadowstream.cli import exit_codes
from shadowstream.cli.connection import connection_options
from shadowstream.cli.context import load


def register(cli: click.Group) -> None:
    cli.add_command(schemas)


@click.group()
def schemas() -> None:
    """Event schemas on the schema topic: how readers find versions they have never seen."""


def _topic(ctx: click.Context, connection: dict[str, Any]) -> Any:
    from shadowstream.core.config import kafka_client_config
    from shadowstream.core.topics import TopicNames
    from shadowstream.schemas.topic import SchemaTopic

    settings = load(ctx, **connection)
    return SchemaTopic(
        kafka_client_config(settings).base(), TopicNames(settings.topic_prefix).schemas
    )


@schemas.command("list")
@connection_options
@click.pass_context
def list_schemas(ctx: click.Context, /, **connection: Any) -> None:
    """Every schema on the topic: fingerprint, event type, fields, and whether this version ships it."""
    from shadowstream.cli.output import console
    from shadowstream.core.errors import BrokerError
    from shadowstream.schemas import default_registry
    from shadowstream.schemas.compat import full_name

    topic = _topic(ctx, connection)
    try:
        if topic.refresh() == 0 and not topic.schemas():
            raise BrokerError(
                f"no schemas on {topic.topic} (is it created? `shadow topics create`)"
            )
        local = default_registry().schemas()
        for fp, schema in sorted(topic.schemas().items(), key=lambda i: full_name(i[1])):
            known = "shipped with this version" if fp in local else "from another version"
            fields = len(schema.get("fields", []))
            console.print(f"{fp.hex()}  {full_name(schema):40} {fields:3} fields  {known}")
        if topic.counters["ignored"]:
            console.print(f"ignored {topic.counters['ignored']} records that are not valid schemas")
    finally:
        topic.close()


@schemas.command("check")
@click.argument("schema_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@connection_options
@click.pass_context
def check(ctx: click.Context, /, schema_file: Path, **connection: Any) -> None:
    """Would SCHEMA_FILE (.avsc) be accepted next to the versions on the topic?"""
    from shadowstream.cli.command_group import fail
    from shadowstream.cli.output import console

    try:
        schema = json.loads(schema_file.read_text("utf-8"))
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise ValueError("not an Avro record schema")
        from shadowstream.schemas.codec import schema_fingerprint

        schema_fingerprint(schema)
    except (OSError, ValueError) as exc:
        fail(f"{schema_file}: {exc}", exit_codes.USAGE)
    topic = _topic(ctx, connection)
    try:
        problems = topic.check(schema)
    finally:
        topic.close()
    if problems:
        for problem in problems:
            console.print(f"  {problem}", highlight=False)
        fail(
            f"{schema_file} breaks the evolution rules ({len(problems)} problems; docs/schemas.md)",
            exit_codes.FAIL,
        )
    console.print(f"{schema_file}: compatible with every version on the topic")


@schemas.command("publish")
@connection_options
@click.pass_context
def publish(ctx: click.Context, /, **connection: Any) -> None:
    """Publish this version's event schemas (agents and the SDK do it at start-up)."""
    from shadowstream.cli.output import console
    from shadowstream.schemas.codec import CODECS

    topic = _topic(ctx, connection)
    try:
        published = topic.publish([codec.schema for codec in CODECS])
    finally:
        topic.close()
    console.print(
        f"published {len(published)} schemas" + "".join(f"\n  {fp.hex()}" for fp in published)
    )
