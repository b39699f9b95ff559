"""The schema topic: how readers find writer schemas they have never seen, with no registry server.

Every writer publishes each schema it uses, once, to ``<prefix>.schemas``
(compacted, one partition): key = the 8-byte fingerprint as 16 hex
characters, value = the schema's JSON. A reader that meets an unknown
fingerprint reads the topic from where it last stopped up to its end, and
keeps what it found; the codec then resolves the event to its own version.

Publishing checks compatibility first (:func:`shadowstream.schemas.compat.evolution_problems`)
against every version of the same event type already on the topic and
refuses a schema that breaks the rules (docs/schemas.md).

Records are verified on read: a value that is not a schema, or whose
fingerprint is not its key, is ignored (and counted), so a bad record can
neither crash a reader nor redefine a fingerprint; the first valid record of
a fingerprint wins.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from shadowstream.core.errors import BrokerError, IncompatibleSchemaError
from shadowstream.schemas.codec import SchemaRegistry, schema_fingerprint
from shadowstream.schemas.compat import evolution_problems, full_name

log = logging.getLogger(__name__)

MAX_SCHEMA_BYTES = 256 * 1024
_MISSING_LIMIT = 10_000


def schema_record(schema: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The (key, value) a writer publishes for ``schema``."""
    fp = schema_fingerprint(dict(schema))
    return fp.hex().encode(), json.dumps(schema, separators=(",", ":")).encode()


def parse_schema_record(
    key: bytes | None, value: bytes | None
) -> tuple[bytes, dict[str, Any]] | None:
    """(fingerprint, schema) of a record, or None if it is not a valid schema record."""
    if not key or not value or len(key) != 16 or len(value) > MAX_SCHEMA_BYTES:
        return None
    try:
        fp = bytes.fromhex(key.decode("ascii"))
        schema = json.loads(value)
        if not isinstance(schema, dict) or schema.get("type") != "record":
            return None
        if schema_fingerprint(schema) != fp:
            return None
    except Exception:  # hostile bytes: bad hex, bad JSON, deep nesting, not an Avro schema
        return None
    return fp, schema


class SchemaTopic:
    """Reads and publishes the schema topic; a :class:`~shadowstream.schemas.codec.SchemaSource`.

    ``conf``: librdkafka settings to reach the cluster (bootstrap.servers and
    security options). ``lookup_wait_s``: how long a reader waits for a
    fingerprint that is not on the topic yet (a writer publishes its schema
    before its first event, so this only covers the race between the two);
    at most one such wait per ``retry_after_s``. A fingerprint not found is
    looked up again only after ``retry_after_s``.
    """

    def __init__(
        self,
        conf: Mapping[str, Any],
        topic: str,
        *,
        lookup_wait_s: float = 5.0,
        retry_after_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.topic = topic
        self.lookup_wait_s = lookup_wait_s
        self.retry_after_s = retry_after_s
        self.timeout_s = timeout_s
        self._conf = {k: v for k, v in conf.items() if not callable(v) or k == "logger"}
        # librdkafka logs through Python logging, never straight to stderr
        self._conf.setdefault("logger", logging.getLogger("shadowstream.librdkafka.schemas"))
        self._schemas: dict[bytes, dict[str, Any]] = {}
        self._positions: dict[int, int] = {}
        self._consumer: Consumer | None = None
        self._lock = threading.RLock()
        self._missing: dict[bytes, float] = {}
        self._last_wait = -1e9
        self.counters = {"lookups": 0, "found": 0, "not_found": 0, "ignored": 0, "published": 0}

    # -- reading --------------------------------------------------------------------------
    def schemas(self) -> dict[bytes, dict[str, Any]]:
        with self._lock:
            return dict(self._schemas)

    def refresh(self) -> int:
        """Read what was added since the last refresh; returns how many new schemas."""
        with self._lock:
            consumer = self._consumer_or_none()
            if consumer is None:
                return 0
            try:
                return self._read_to_end(consumer)
            except KafkaException as exc:
                log.warning("schema topic %s: %s", self.topic, exc)
                return 0

    def _consumer_or_none(self) -> Consumer | None:
        if self._consumer is not None:
            return self._consumer
        conf = dict(self._conf)
        conf.update(
            {
                "group.id": f"{self.topic}.reader.{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "fetch.wait.max.ms": 100,
            }
        )
        consumer = Consumer(conf)
        try:
            meta = consumer.list_topics(self.topic, timeout=self.timeout_s).topics.get(self.topic)
        except KafkaException as exc:
            consumer.close()
            log.warning("schema topic %s unavailable: %s", self.topic, exc)
            return None
        if meta is None or meta.error is not None or not meta.partitions:
            consumer.close()
            log.warning(
                "schema topic %s does not exist (create it with the shadow topics)", self.topic
            )
            return None
        self._positions = {p: 0 for p in meta.partitions}
        self._consumer = consumer
        return consumer

    def _read_to_end(self, consumer: Consumer) -> int:
        ends: dict[int, int] = {}
        for partition, position in self._positions.items():
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=self.timeout_s
            )
            self._positions[partition] = max(position, low)
            if high > self._positions[partition]:
                ends[partition] = high
        if not ends:
            return 0
        consumer.assign([TopicPartition(self.topic, p, self._positions[p]) for p in ends])
        added = 0
        deadline = time.monotonic() + self.timeout_s
        while ends and time.monotonic() < deadline:
            messages = consumer.consume(1000, 0.5)
            if not messages:  # compaction may leave the last offsets empty
                for tp in consumer.position([TopicPartition(self.topic, p) for p in ends]):
                    if tp.offset >= ends[tp.partition]:
                        ends.pop(tp.partition, None)
            for msg in messages:
                if msg.error() is not None:
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                self._positions[partition] = offset + 1
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
                added += self._keep(msg.key(), msg.value())
        consumer.unassign()
        return added

    def _keep(self, key: bytes | None, value: bytes | None) -> int:
        parsed = parse_schema_record(key, value)
        if parsed is None:
            self.counters["ignored"] += 1
            return 0
        fp, schema = parsed
        if fp in self._schemas:
            return 0
        self._schemas[fp] = schema
        return 1

    def fetch(self, fingerprint: bytes) -> dict[str, Any] | None:
        """The schema with this fingerprint, reading the topic if needed (SchemaSource)."""
        with self._lock:
            self.counters["lookups"] += 1
            found = self._schemas.get(fingerprint)
            if found is not None:
                return found
            now = time.monotonic()
            if self._missing.get(fingerprint, 0.0) > now:
                return None
            self.refresh()
            found = self._schemas.get(fingerprint)
            if found is None and now - self._last_wait >= self.retry_after_s:
                self._last_wait = now  # one wait per period: forged fingerprints cannot stall us
                deadline = now + self.lookup_wait_s
                while found is None and time.monotonic() < deadline:
                    time.sleep(0.2)
                    self.refresh()
                    found = self._schemas.get(fingerprint)
            if found is None:
                if len(self._missing) > _MISSING_LIMIT:
                    self._missing.clear()
                self._missing[fingerprint] = time.monotonic() + self.retry_after_s
                self.counters["not_found"] += 1
                log.warning("schema %s is not on %s", fingerprint.hex(), self.topic)
                return None
            self.counters["found"] += 1
            self._missing.pop(fingerprint, None)
            return found

    # -- publishing ----------------------------------------------------------------------
    def check(self, schema: Mapping[str, Any]) -> list[str]:
        """Why ``schema`` may not be published next to the versions on the topic (empty: it may)."""
        self.refresh()
        name = full_name(schema)
        existing = [s for s in self.schemas().values() if full_name(s) == name]
        return evolution_problems(schema, existing)

    def publish(self, schemas: Iterable[Mapping[str, Any]]) -> list[bytes]:
        """Publish the schemas not on the topic yet, after checking them; returns their fingerprints.

        Raises IncompatibleSchemaError (nothing published) or BrokerError.
        """
        pending: list[tuple[bytes, bytes]] = []
        with self._lock:
            if self._consumer_or_none() is None:
                raise BrokerError(f"schema topic {self.topic} is not available")
            for schema in schemas:
                key, value = schema_record(schema)
                if bytes.fromhex(key.decode()) in self.schemas():
                    continue
                problems = self.check(schema)
                if problems:
                    raise IncompatibleSchemaError(
                        f"{full_name(schema)} {key.decode()} breaks the evolution rules: "
                        + "; ".join(problems[:5]),
                        problems,
                    )
                pending.append((key, value))
            if not pending:
                return []
            self._produce(pending)
            for key, value in pending:
                self._keep(key, value)
            self.counters["published"] += len(pending)
        return [bytes.fromhex(key.decode()) for key, _ in pending]

    def _produce(self, records: list[tuple[bytes, bytes]]) -> None:
        errors: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        conf = dict(self._conf)
        conf.update({"acks": "all", "message.timeout.ms": int(self.timeout_s * 1000)})
        producer = Producer(conf)
        for key, value in records:
            producer.produce(self.topic, value, key, on_delivery=delivered)
        remaining = producer.flush(self.timeout_s + 5)
        if remaining or errors:
            reason = errors[0] if errors else "timed out"
            raise BrokerError(f"schemas not delivered to {self.topic}: {reason}")

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


def follow_schema_topic(
    conf: Mapping[str, Any],
    topic: str,
    registry: SchemaRegistry,
    publish: Iterable[Mapping[str, Any]] = (),
    **options: Any,
) -> SchemaTopic:
    """Publish this process's writer schemas, then let ``registry`` look unknown ones up there.

    A schema that breaks the evolution rules raises IncompatibleSchemaError; a
    topic that cannot be reached or does not exist is only logged (readers of
    this process's own versions do not need it). Detach it
    (``registry.detach``) and close it when done.
    """
    source = SchemaTopic(conf, topic, **options)
    try:
        source.publish(publish)
    except BrokerError as exc:
        log.warning(
            "writer schemas not published (%s); readers of other versions cannot find them", exc
        )
    except Exception:
        source.close()
        raise
    registry.attach(source)
    return source
