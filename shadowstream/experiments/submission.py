"""Producing a batch run's events: each item's request (with its targets), its reference
as the champion's response, and answers from provider batches; the request ids the
broker acknowledged are collected to be recorded in ClickHouse."""

from __future__ import annotations

import threading
import time

from confluent_kafka import KafkaError, Message, Producer

from shadowstream.core.errors import BrokerError
from shadowstream.core.kafka import KafkaClientConfig
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.events import Headers, reference_event, request_event, targets_header
from shadowstream.experiments.items import BatchItem
from shadowstream.schemas import REQUEST, RESPONSE
from shadowstream.schemas.records import ResponseEvent
from shadowstream.schemas.wire import ANSWERED_HEADER


class Deliveries:
    """Request ids the broker acknowledged, handed to ClickHouse in chunks."""

    def __init__(self, requests_topic: str) -> None:
        self.topic = requests_topic
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self.failures = 0
        self.last_error = ""

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            with self._lock:
                self.failures += 1
                self.last_error = str(err)
            return
        key = msg.key()
        if msg.topic() == self.topic and key is not None:
            with self._lock:
                self._ids.append(key.decode())

    def take(self) -> list[str]:
        with self._lock:
            ids, self._ids = self._ids, []
        return ids


class Submission:
    """The run's producer; :meth:`check` raises once an event could not be delivered."""

    def __init__(self, kafka: KafkaClientConfig, topics: TopicNames, experiment_id: str) -> None:
        self.topics = topics
        self.experiment_id = experiment_id
        self.deliveries = Deliveries(topics.batch_requests)
        self.producer = Producer(
            kafka.producer(
                **{"message.timeout.ms": 60_000, "on_delivery": self.deliveries.on_delivery}
            )
        )

    def produce(
        self,
        rid: str,
        item: BatchItem,
        targets: list[str],
        answers: dict[str, ResponseEvent],
    ) -> None:
        """The item's reference (the champion), its request, then the provider answers."""
        now_us = time.time_ns() // 1000
        if item.reference is not None:
            reference = reference_event(self.experiment_id, rid, item.reference, now_us)
            self._send(self.topics.responses, rid, RESPONSE.encode(reference))
        headers = targets_header(targets)
        if answers:  # answered by a provider batch: the router records them, calls nobody
            headers.append((ANSWERED_HEADER, ",".join(answers).encode()))
        request = request_event(self.experiment_id, item, now_us)
        self._send(self.topics.batch_requests, rid, REQUEST.encode(request), headers)
        for answer in answers.values():
            self._send(self.topics.responses, rid, RESPONSE.encode(answer))

    def _send(self, topic: str, key: str, value: bytes, headers: Headers | None = None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key.encode(), headers=headers)
                return
            except BufferError:  # librdkafka's queue is full: let it drain
                self.producer.poll(0.05)

    def check(self) -> None:
        """Serve delivery reports; raise BrokerError once an event was not delivered."""
        self.producer.poll(0)
        if self.deliveries.failures:
            raise BrokerError(
                f"{self.deliveries.failures} batch events could not be delivered "
                f"(last: {self.deliveries.last_error})"
            )

    def flush(self, timeout_s: float) -> int:
        """Wait for the broker; how many events are still undelivered."""
        return int(self.producer.flush(timeout_s))
