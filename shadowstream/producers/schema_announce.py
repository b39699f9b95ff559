"""The SDK publishes the schemas it writes to the schema topic, once, off the request path.

Readers that have never seen this SDK's schema version find it there (see
shadowstream.schemas.topic). A background thread publishes at start-up and
retries with backoff while the broker or the topic is not there; the service
never waits for it. A schema the topic refuses (it breaks the evolution rules
against a version already in use) is reported to ``on_refused``: the emitter
then stops emitting, since no reader could resolve its events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shadowstream.core.errors import IncompatibleSchemaError
from shadowstream.schemas.topic import SchemaTopic

log = logging.getLogger(__name__)


class SchemaAnnouncer:
    def __init__(
        self,
        conf: Mapping[str, Any],
        topic: str,
        schemas: Sequence[Mapping[str, Any]],
        on_refused: Callable[[IncompatibleSchemaError], None],
        *,
        first_retry_s: float = 5.0,
        max_retry_s: float = 300.0,
    ) -> None:
        self._conf = dict(conf)
        self._topic = topic
        self._schemas = list(schemas)
        self._on_refused = on_refused
        self._first_retry_s = first_retry_s
        self._max_retry_s = max_retry_s
        self._stop = threading.Event()
        self.published = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="shadow-schema-announce", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        delay = self._first_retry_s
        while not self._stop.is_set():
            topic = SchemaTopic(self._conf, self._topic, timeout_s=10.0)
            try:
                topic.publish(self._schemas)
                self.published.set()
                return
            except IncompatibleSchemaError as exc:
                log.error("shadow emitter: %s; events are not emitted", exc)
                self._on_refused(exc)
                return
            except Exception as exc:  # broker down, no topic yet: try again later
                log.warning("shadow emitter: schemas not published yet (%s)", exc)
            finally:
                topic.close()
            self._stop.wait(delay)
            delay = min(delay * 2, self._max_retry_s)

    def stop(self) -> None:
        self._stop.set()
