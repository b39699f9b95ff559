"""What the router writes and commits at each commit (see the protocol in
:mod:`shadowstream.stream_agents.router`): the markers of closed requests, the
noise the learner changed, and the offsets no open request still holds."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import TopicPartition

from shadowstream.runtime.kafka_io import OutputProducer
from shadowstream.schemas.wire import MARKERS_KEY, MARKERS_PER_RECORD, encode_markers
from shadowstream.stream_agents.guards import Emitted
from shadowstream.stream_agents.join import JoinEngine
from shadowstream.stream_agents.noise import NoiseLearner
from shadowstream.stream_agents.noise_store import encode_scope

Engines = Mapping[int, JoinEngine[Emitted]]


def write_markers(producer: OutputProducer, changelog: str, engines: Engines) -> int:
    """The markers of requests closed since the last commit, many to a record, on their
    partition of the changelog; how many records were produced."""
    markers = {p: engine.drain_markers() for p, engine in engines.items()}
    wrote = 0
    for partition, items in markers.items():
        for start in range(0, len(items), MARKERS_PER_RECORD):
            chunk = items[start : start + MARKERS_PER_RECORD]
            producer.produce(changelog, encode_markers(chunk), MARKERS_KEY, partition=partition)
            wrote += 1
    return wrote


def write_noise(producer: OutputProducer, topic: str, noise: NoiseLearner) -> int:
    """The noise scopes that changed, to their compacted topic; how many were produced."""
    wrote = 0
    for scope in noise.drain_dirty():
        record = encode_scope(noise, scope)
        if record is not None:
            producer.produce(topic, record[1], record[0], partition=0)
            wrote += 1
    return wrote


def committable_offsets(
    consumed: Mapping[tuple[int, int], int], engines: Engines, topic_of: Mapping[int, str]
) -> list[TopicPartition]:
    """Per (source, partition) consumed: the offset of the oldest event an open request
    still holds, or everything consumed if none is held (partitions no longer ours: none)."""
    offsets = []
    for (source, partition), next_offset in consumed.items():
        engine = engines.get(partition)
        if engine is None:
            continue
        position = engine.commit_offset(source, next_offset)
        offsets.append(TopicPartition(topic_of[source], partition, position))
    return offsets
