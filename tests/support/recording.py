"""A ShadowEmitter whose produced events are kept in memory (decoded), for SDK unit tests.

The emitter is the real one (encoding, counters, trace context); only the last
step, librdkafka's produce(), is replaced by an append, so no broker is needed.
"""

from __future__ import annotations

from typing import Any

from shadowstream.pipeline.embedded import free_port
from shadowstream.producers import ShadowEmitter
from shadowstream.schemas import REQUEST, RESPONSE


class RecordingEmitter(ShadowEmitter):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("service", "svc")
        kwargs.setdefault("publish_schemas", False)
        super().__init__(f"kafka://127.0.0.1:{free_port()}", **kwargs)
        self.sent: list[tuple[str, bytes, Any]] = []
        self._produce = self._record  # type: ignore[method-assign]

    def _record(self, topic: str, value: bytes, key: Any) -> None:
        self.sent.append((topic, value, key))

    def requests(self) -> list[dict[str, Any]]:
        return [REQUEST.decode(v) for t, v, _ in self.sent if t.endswith(".requests")]

    def responses(self) -> list[dict[str, Any]]:
        return [RESPONSE.decode(v) for t, v, _ in self.sent if t.endswith(".responses")]
