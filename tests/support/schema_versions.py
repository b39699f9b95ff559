"""Run this code base as its previous event-schema version, for rolling-upgrade tests.

The mechanism (schema topic, resolution) is this version's; the schemas are
the v1 files shipped in ``avro/history`` and the ClickHouse migrations stop
before this version's (0050), i.e. what the release before the schema change
ran. Nothing of the current schemas is registered in the process.

    python -m tests.support.schema_versions [shadow CLI args...]      # an old agent
    python -m tests.support.schema_versions emit BROKER PREFIX N ID_PREFIX  # an old SDK
"""

from __future__ import annotations

import json
import sys

FIRST_NEW_MIGRATION = 50
NAMES = {
    "REQUEST": "request_event",
    "RESPONSE": "response_event",
    "COMPARISON": "comparison_event",
    "DEAD_LETTER": "dead_letter_event",
    "STATS": "stats_event",
}


def use_previous_versions() -> None:
    import shadowstream.schemas as schemas
    import shadowstream.schemas.codec as codec
    import shadowstream.sinks.clickhouse.migrations as migrations

    registry = codec.SchemaRegistry()
    for attr, name in NAMES.items():
        history = codec.load_history(name)
        old = codec.EventCodec(history[0] if history else codec.load_schema(name), registry)
        setattr(codec, attr, old)
        setattr(schemas, attr, old)
    codec._REGISTRY = registry
    codec.CODECS = tuple(getattr(codec, attr) for attr in NAMES)
    shipped = migrations.available_migrations

    def before_this_version() -> list[migrations.Migration]:
        return [m for m in shipped() if m.version < FIRST_NEW_MIGRATION]

    migrations.available_migrations = before_this_version


def emit(broker: str, prefix: str, n: int, id_prefix: str) -> None:
    from shadowstream.producers import ShadowEmitter
    from tests.support.models import champion_output

    emitter = ShadowEmitter(broker, service="old-sdk", topic_prefix=prefix)
    emitter._announcer.published.wait(30)  # type: ignore[union-attr]
    for i in range(n):
        payload = {"i": i}
        with emitter.capture("/predict", payload, request_id=f"{id_prefix}-{i}") as call:
            call.output = champion_output(payload)
    emitter.close(30)
    print(json.dumps(vars(emitter.stats())))


if __name__ == "__main__":
    use_previous_versions()
    if sys.argv[1:2] == ["emit"]:
        emit(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        from shadowstream.cli.main import main

        sys.argv[0] = "shadow"
        main()
