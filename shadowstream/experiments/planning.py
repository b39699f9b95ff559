"""Before anything is sent: which run, which items, and is the pipeline ready for them.

A run is new (a fresh or given experiment id), a re-run of an existing one
with the same source and challengers (treated as a resume: idempotent), or a
``--resume`` of a stored run (its source rebuilt from the stored spec).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from shadowstream.core.challenger_config import NAME_PATTERN
from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.errors import ExperimentError, NotFoundError
from shadowstream.core.kafka import list_topic_names
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.ids import check_experiment_id, new_experiment_id
from shadowstream.experiments.sources import Source, source_from_spec
from shadowstream.experiments.store import (
    CANCELLED,
    RUNNING,
    ExperimentRecord,
    ExperimentStore,
    this_process,
)


@dataclass(frozen=True)
class RunPlan:
    record: ExperimentRecord
    source: Source
    resumed: bool
    notes: list[str] = field(default_factory=list)
    was_cancelled: bool = False  # resuming lifts the cancellation first


def plan_run(
    settings: Settings,
    store: ExperimentStore,
    *,
    challengers: Sequence[str],
    source: Source,
    rate: float,
    experiment_id: str | None = None,
) -> RunPlan:
    """A new run, or the same run again (same id, source and challengers): then a resume."""
    names = _check_challengers(challengers)
    store.require_schema()
    check_pipeline_topics(settings, names)
    run_id = check_experiment_id(experiment_id) if experiment_id else new_experiment_id()
    spec = source.spec()
    existing = store.get(run_id)
    if existing is not None:
        if existing.challengers != names or existing.source_spec != spec:
            raise ExperimentError(
                f"experiment {run_id!r} already exists with another source or challengers "
                f"({existing.source}; {', '.join(existing.challengers)}): continue it with "
                f"--resume {run_id}, or pick a new --experiment"
            )
        return _resume(settings, store, existing, source, rate)
    record = ExperimentRecord(
        experiment_id=run_id,
        challengers=names,
        source_kind=source.kind,
        source=source.describe(),
        source_spec=spec,
        total=source.count(),
        status=RUNNING,
        rate=rate,
        owner=this_process(),
    )
    return RunPlan(record, source, resumed=False, notes=_local_notes(settings, names))


def plan_resume(
    settings: Settings, store: ExperimentStore, experiment_id: str, rate: float | None = None
) -> RunPlan:
    store.require_schema()
    existing = store.get(experiment_id)
    if existing is None:
        raise NotFoundError(f"no batch run {experiment_id!r} (the runs: `shadow batch status`)")
    check_pipeline_topics(settings, existing.challengers)
    source = source_from_spec(existing.source_spec, store.warehouse)
    return _resume(settings, store, existing, source, rate)


def _resume(
    settings: Settings,
    store: ExperimentStore,
    existing: ExperimentRecord,
    source: Source,
    rate: float | None,
) -> RunPlan:
    if (
        existing.status == RUNNING
        and existing.owner != this_process()
        and not existing.submitter_gone
    ):
        raise ExperimentError(
            f"run {existing.experiment_id} is being submitted by {existing.owner} "
            f"(heartbeat {existing.heartbeat_age_s:.0f}s ago): wait for it, or stop it first"
        )
    notes = _local_notes(settings, existing.challengers)
    if existing.status == CANCELLED:
        notes.append(f"run {existing.experiment_id} was cancelled; resuming it re-enables it")
    record = existing.with_status(
        RUNNING,
        total=source.count(),
        rate=rate or existing.rate,
        owner=this_process(),
    )
    return RunPlan(
        record, source, resumed=True, notes=notes, was_cancelled=existing.status == CANCELLED
    )


LIVE_RATE, PROVIDER_RATE = 50.0, 1_000.0  # default --rate: live calls, provider answers


def provider_challengers(
    settings: Settings, challengers: Sequence[str], use_batch_api: bool = True
) -> list[str]:
    """The run's challengers answered by their provider batch API (batch-only ones always)."""
    known = {s.name: s for s in settings.challengers}
    out = []
    for name in challengers:
        spec = known.get(name)
        if spec is None or spec.batch_api is None:
            continue
        if use_batch_api or not spec.live:
            out.append(name)
    return out


def default_rate(settings: Settings, challengers: Sequence[str], use_batch_api: bool) -> float:
    """Submissions per second when --rate is not given: answers that come from provider
    batches cost the pipeline only a join, live calls cost the challenger."""
    answered = provider_challengers(settings, challengers, use_batch_api)
    return PROVIDER_RATE if len(answered) == len(challengers) else LIVE_RATE


def _check_challengers(challengers: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for name in challengers:
        if not re.match(NAME_PATTERN, name):
            raise ExperimentError(f"invalid challenger name {name!r}")
        if name not in names:
            names.append(name)
    if not names:
        raise ExperimentError("name at least one --challenger")
    return tuple(names)


def _local_notes(settings: Settings, challengers: Sequence[str]) -> list[str]:
    known = {spec.name for spec in settings.challengers}
    unknown = [name for name in challengers if name not in known]
    if not unknown:
        return []
    return [
        f"challenger {', '.join(unknown)} not in this config: its concurrency and rate "
        "limits are unknown here, defaults are used for flow control"
    ]


def check_pipeline_topics(settings: Settings, challengers: Sequence[str]) -> None:
    """The pipeline must know every challenger: its batch topic exists (the pipeline made it)."""
    kafka = kafka_client_config(settings)
    topics = TopicNames(settings.topic_prefix)
    existing = list_topic_names(kafka, timeout=10)
    for topic in (topics.batch_requests, topics.responses, topics.control):
        if topic not in existing:
            raise ExperimentError(
                f"no topic {topic} at {kafka.bootstrap_servers}: is the pipeline running "
                f"(`shadow run`) with topic prefix {settings.topic_prefix!r}?"
            )
    for name in challengers:
        topic = topics.challenger_batch(name)
        if topic not in existing:
            raise ExperimentError(
                f"the pipeline does not know challenger {name!r} (no topic {topic}): add it "
                "to the pipeline's config and restart the pipeline"
            )
