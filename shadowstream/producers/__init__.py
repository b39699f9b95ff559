"""The producer SDK: what a production service uses to emit shadow events.

Needs only confluent-kafka and fastavro; never raises into the caller and never
blocks the request path::

    from shadowstream.producers import ShadowEmitter

    emitter = ShadowEmitter("kafka://kafka:9092", service="search")

    with emitter.capture("/rank", payload, attributes={"language": "de"}) as call:
        call.output = model.rank(payload)          # the champion answers the user
        call.usage(tokens_in=120, tokens_out=30)

    emitter.close()

Web services: ``app.add_middleware(ShadowMiddleware, emitter=emitter, routes=[...])``
(ASGI: FastAPI, Starlette; see docs/integration.md).
"""

from shadowstream.producers.asgi import ShadowMiddleware
from shadowstream.producers.capture import ChampionCall
from shadowstream.producers.emitter import ShadowEmitter
from shadowstream.producers.emitter_stats import EmitterStats
from shadowstream.producers.http_capture import HttpShadowStats, ShadowedRequest
from shadowstream.producers.jsonable import JSONText

__all__ = [
    "ChampionCall",
    "EmitterStats",
    "HttpShadowStats",
    "JSONText",
    "ShadowEmitter",
    "ShadowMiddleware",
    "ShadowedRequest",
]
