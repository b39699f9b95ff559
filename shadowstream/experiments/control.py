"""Cancelling a run: a ``cancel`` command on the control topic, and the stored status.

Routers stop fanning the run out, challenger workers answer its queued
requests ``skipped`` (the join closes them without a comparison), and a
submitter still running stops. ``--resume`` re-announces the run, which
lifts the cancellation.
"""

from __future__ import annotations

from shadowstream.core.config import Settings, kafka_client_config
from shadowstream.core.errors import NotFoundError
from shadowstream.core.topics import TopicNames
from shadowstream.experiments.commands import publish_command
from shadowstream.experiments.planning import check_pipeline_topics
from shadowstream.experiments.store import (
    CANCELLED,
    COMPLETED,
    ExperimentRecord,
    ExperimentStore,
    this_process,
)


def cancel_run(settings: Settings, store: ExperimentStore, experiment_id: str) -> ExperimentRecord:
    record = store.get(experiment_id)
    if record is None:
        raise NotFoundError(f"no batch run {experiment_id!r} (the runs: `shadow batch status`)")
    if record.status == COMPLETED:
        return record  # nothing left to cancel: the caller says so (cancelling is idempotent)
    check_pipeline_topics(settings, ())  # reachable, and the control topic exists
    publish_command(
        kafka_client_config(settings),
        TopicNames(settings.topic_prefix).control,
        {"type": "cancel", "experiment_id": experiment_id},
    )
    return store.save(record.with_status(CANCELLED, f"cancelled from {this_process()}"))
