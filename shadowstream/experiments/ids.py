"""Experiment ids and the deterministic request id of every batch item.

A batch item's request id is ``<experiment>:<source id>`` (the captured
request's id, or the eval item's id / line number). Submitting the same item
twice therefore produces the same request id, which the join and the
ClickHouse tables (ReplacingMergeTree keyed on it) collapse: re-running or
resuming an experiment never duplicates a comparison.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from shadowstream.core.errors import ExperimentError

LIVE = "live"
SEPARATOR = ":"
EXPERIMENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_SOURCE_ID = 512


def new_experiment_id(now: dt.datetime | None = None) -> str:
    """``batch-20261126-2305-7f3a``: sortable by creation time, unique enough to never clash."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    return f"batch-{stamp}-{secrets.token_hex(2)}"


def check_experiment_id(experiment_id: str) -> str:
    if experiment_id == LIVE:
        raise ExperimentError("'live' is the experiment of production traffic; pick another id")
    if not EXPERIMENT_PATTERN.match(experiment_id):
        raise ExperimentError(
            f"invalid experiment id {experiment_id!r}: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return experiment_id


def request_id(experiment_id: str, source_id: str) -> str:
    return f"{experiment_id}{SEPARATOR}{source_id}"


def key_prefix(experiment_id: str) -> bytes:
    """Every Kafka message of the experiment is keyed by a request id with this prefix."""
    return f"{experiment_id}{SEPARATOR}".encode()


def check_source_id(source_id: str, where: str) -> str:
    if not source_id:
        raise ExperimentError(f"{where}: empty id")
    if len(source_id) > MAX_SOURCE_ID:
        raise ExperimentError(f"{where}: id longer than {MAX_SOURCE_ID} characters")
    return source_id
