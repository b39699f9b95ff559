"""Is the broker there, and does it still have our topics? Asked every few seconds.

One watch per process, on its own thread, with its own admin client: a
metadata request every ``interval_s`` (every second while the broker is
away). It is what readiness reports about Kafka, and it repairs the one thing
the agents cannot: a broker that came back *empty* (memory storage, a lost
volume) has none of the pipeline's topics. The watch re-creates them with the
configured partition counts (idempotently: several processes may race to do
it) and tells the agents, which re-check their positions before the next
commit and refresh their metadata so the subscription sees the new topics at
once.

A topic that exists with another partition count is reported, never
"fixed": deleting it would destroy data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaException

from shadowstream.core.errors import BrokerError
from shadowstream.core.kafka import KafkaClientConfig, TopicSpec, ensure_topics

log = logging.getLogger(__name__)

# events passed to listeners
BROKER_BACK = "broker_back"  # reachable again after an outage
TOPICS_RECREATED = "topics_recreated"  # it had lost the pipeline's topics; they exist again

Listener = Callable[[str], None]


class BrokerWatch:
    def __init__(
        self,
        client: KafkaClientConfig,
        specs: Sequence[TopicSpec],
        *,
        create_missing: bool = True,
        interval_s: float = 2.0,
        timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._specs = list(specs)
        self.create_missing = create_missing
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._admin: Any = None
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reachable: bool | None = None  # None until the first answer or failure
        self.down_since: float | None = None
        self.last_ok: float | None = None
        self.cluster_id: str | None = None
        self.last_error: str | None = None
        self.missing: list[str] = []
        self.mismatched: list[str] = []
        self.outages = 0
        self.recreated = 0
        self.first_ok_at: float | None = None  # epoch seconds (start-up timing)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- thread ---------------------------------------------------------------------------
    def start(self) -> BrokerWatch:
        self._thread = threading.Thread(target=self._loop, name="broker-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.timeout_s + 2)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(self.interval_s if self.reachable else min(1.0, self.interval_s))

    # -- one probe ---------------------------------------------------------------------------
    def probe(self) -> None:
        """Ask for metadata once; act on what changed."""
        if self._admin is None:
            conf = self._client.base()
            conf["error_cb"] = lambda err: None  # reported by reachable/last_error instead
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(conf)
        try:
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            self._unreachable(str(exc.args[0] if exc.args else exc))
            return
        self._reachable(metadata.cluster_id)
        self._check_topics(metadata.topics)

    def _unreachable(self, error: str) -> None:
        self.last_error = error
        if self.reachable is not False:
            self.outages += 1
            self.down_since = self._clock()
            log.warning(
                "broker %s unreachable (%s); agents wait for it, nothing is lost",
                self._client.bootstrap_servers,
                error,
            )
        self.reachable = False

    def _reachable(self, cluster_id: str | None) -> None:
        was_down = self.reachable is False
        now = self._clock()
        if was_down and self.down_since is not None:
            log.warning(
                "broker %s is back after %.0fs",
                self._client.bootstrap_servers,
                now - self.down_since,
            )
        self.reachable = True
        self.down_since = None
        self.last_ok = now
        self.cluster_id = cluster_id
        if self.first_ok_at is None:
            self.first_ok_at = time.time()
        if was_down:
            self._notify(BROKER_BACK)

    def _check_topics(self, topics: dict[str, Any]) -> None:
        missing = [s for s in self._specs if s.name not in topics]
        self.mismatched = [
            f"{s.name} has {len(topics[s.name].partitions)} partitions, expected {s.partitions}"
            for s in self._specs
            if s.name in topics and len(topics[s.name].partitions) != s.partitions
        ]
        self.missing = [s.name for s in missing]
        if not missing or not self.create_missing:
            return
        try:
            created = ensure_topics(self._client, missing, timeout=self.timeout_s * 3)
        except BrokerError as exc:
            self.last_error = str(exc)
            log.warning("could not re-create missing topics (%s); retrying", exc)
            return
        self.missing = []
        self.recreated += 1
        log.warning(
            "the broker had none of %s topic(s) (it restarted without its data?): "
            "re-created %s with the configured partitions; what it held before is gone",
            len(missing),
            ", ".join(created or [s.name for s in missing]),
        )
        self._notify(TOPICS_RECREATED)

    def _notify(self, event: str) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("broker watch listener failed on %s", event)

    # -- health ----------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Why the pipeline cannot work with this broker right now (empty: fine)."""
        now = self._clock()
        if self.reachable is None:
            return ["checking the broker"]
        if not self.reachable:
            down = now - self.down_since if self.down_since is not None else 0.0
            return [f"broker unreachable for {down:.0f}s ({self.last_error})"]
        if self.last_ok is not None and now - self.last_ok > 3 * self.interval_s + self.timeout_s:
            return [f"no answer from the broker for {now - self.last_ok:.0f}s"]
        out = [f"missing topics: {', '.join(self.missing)}"] if self.missing else []
        return out + self.mismatched

    def status(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "bootstrap_servers": self._client.bootstrap_servers,
            "reachable": self.reachable,
            "down_for_s": round(now - self.down_since, 1) if self.down_since else 0.0,
            "last_error": self.last_error,
            "missing_topics": self.missing,
            "mismatched_topics": self.mismatched,
            "outages": self.outages,
            "topics_recreated": self.recreated,
        }
