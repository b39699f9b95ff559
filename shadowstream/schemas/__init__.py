"""Event contracts: Avro schemas (``avro/*.avsc``) and their single-object codec.

from shadowstream.schemas import REQUEST, RESPONSE, COMPARISON
data = REQUEST.encode({...})
event = REQUEST.decode(data)
"""

from shadowstream.schemas.codec import (
    COMPARISON,
    DEAD_LETTER,
    REQUEST,
    RESPONSE,
    STATS,
    EventCodec,
    SchemaRegistry,
    default_registry,
    load_schema,
)

__all__ = [
    "COMPARISON",
    "DEAD_LETTER",
    "REQUEST",
    "RESPONSE",
    "STATS",
    "EventCodec",
    "SchemaRegistry",
    "default_registry",
    "load_schema",
]
