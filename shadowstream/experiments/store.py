"""Run metadata and submissions in ClickHouse (tables from migration 0010_experiments.sql).

Works through any :class:`~shadowstream.warehouse.client.Warehouse`, including
the owner endpoint of a running pipeline (INSERT ... with bound parameters
through ``command()``), so every terminal sees the same runs.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from shadowstream.core.errors import ExperimentError
from shadowstream.core.secrets import redact_text
from shadowstream.warehouse.client import Warehouse
from shadowstream.warehouse.commands import write_statement

RUNNING, INTERRUPTED, SUBMITTED = "running", "interrupted", "submitted"
COMPLETED, INCOMPLETE, CANCELLED = "completed", "incomplete", "cancelled"
RESUMABLE = frozenset({INTERRUPTED, INCOMPLETE, CANCELLED})  # `shadow batch run --resume` goes on
TABLES = ("experiments", "experiment_submissions")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


HEARTBEAT_STALE_S = 60.0  # the submitter writes one every 10 s


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool | None:
    """Whether the submitting process still exists (None: another host, cannot tell)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class ExperimentRecord:
    experiment_id: str
    challengers: tuple[str, ...]
    source_kind: str
    source: str  # for people
    source_spec: dict[str, Any]  # for --resume
    total: int  # items in the source
    status: str
    rate: float
    owner: str = ""
    message: str = ""
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created_ms / 1000, dt.UTC)

    @property
    def heartbeat_age_s(self) -> float:
        return max(0.0, (now_ms() - self.updated_ms) / 1000)

    @property
    def submitter_gone(self) -> bool:
        """A ``running`` run whose submitter died (no heartbeat, or its process is gone)."""
        return self.heartbeat_age_s > HEARTBEAT_STALE_S or owner_alive(self.owner) is False

    def with_status(self, status: str, message: str = "", **changes: Any) -> ExperimentRecord:
        return replace(self, status=status, message=message, **changes)


_COLUMNS = (
    "experiment_id, challengers, source_kind, source, source_spec, total, status, rate, "
    "owner, message, toUnixTimestamp64Milli(created_at), toUnixTimestamp64Milli(updated_at)"
)


def _record(row: Sequence[Any]) -> ExperimentRecord:
    return ExperimentRecord(
        experiment_id=str(row[0]),
        challengers=tuple(str(c) for c in row[1]),
        source_kind=str(row[2]),
        source=str(row[3]),
        source_spec=orjson.loads(row[4]) if row[4] else {},
        total=int(row[5]),
        status=str(row[6]),
        rate=float(row[7]),
        owner=str(row[8]),
        message=str(row[9]),
        created_ms=int(row[10]),
        updated_ms=int(row[11]),
    )


# the writes of a batch run: registered, so the chDB owner endpoint runs them by name
SAVE_RUN = write_statement(
    "experiments.save",
    """INSERT INTO {db}.experiments
            (experiment_id, challengers, source_kind, source, source_spec, total, status, rate,
             owner, message, created_at, updated_at)
            VALUES ({id:String}, {challengers:Array(String)}, {kind:String},
                    {source:String}, {spec:String}, {total:UInt64}, {status:String},
                    {rate:Float64}, {owner:String}, {message:String},
                    fromUnixTimestamp64Milli({created:Int64}, 'UTC'),
                    fromUnixTimestamp64Milli({updated:Int64}, 'UTC'))""",
)
RECORD_SUBMISSIONS = write_statement(
    "experiments.record_submissions",
    """INSERT INTO {db}.experiment_submissions
            (experiment_id, request_id, submitted_at)
            SELECT {id:String}, arrayJoin({ids:Array(String)}),
                   fromUnixTimestamp64Milli({at:Int64}, 'UTC')""",
)
RECORD_NOT_ROUTED = write_statement(
    "experiments.record_not_routed",
    """INSERT INTO {db}.experiment_submissions
            (experiment_id, request_id, submitted_at, not_routed)
            SELECT {id:String}, pair.1, fromUnixTimestamp64Milli({at:Int64}, 'UTC'), pair.2
            FROM (SELECT arrayJoin(arrayZip({ids:Array(String)},
                                            {names:Array(Array(String))})) AS pair)""",
)


class ExperimentStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.db = warehouse.database

    def has_schema(self) -> bool:
        """Migrations 0010 and 0011 applied (the tables, and the not_routed column)."""
        found = self.warehouse.query(
            "SELECT count() FROM system.columns WHERE database = {db:String} "
            "AND ((table = 'experiments' AND name = 'experiment_id') "
            "OR (table = 'experiment_submissions' AND name = 'not_routed'))",
            {"db": self.db},
        ).scalar()
        return int(found or 0) == len(TABLES)

    def has_runs_table(self) -> bool:
        found = self.warehouse.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = 'experiments'",
            {"db": self.db},
        ).scalar()
        return bool(found)

    def require_schema(self) -> None:
        if not self.has_schema():
            raise ExperimentError(
                f"ClickHouse database {self.db!r} has no batch experiment tables yet: "
                "run `shadow db migrate` (or restart the pipeline, whose sink migrates)"
            )

    # -- runs -----------------------------------------------------------------------------
    def get(self, experiment_id: str) -> ExperimentRecord | None:
        rows = self.warehouse.query(
            f"SELECT {_COLUMNS} FROM {self.db}.experiments FINAL "
            "WHERE experiment_id = {id:String}",
            {"id": experiment_id},
        ).rows
        return _record(rows[0]) if rows else None

    def latest(self, limit: int = 20) -> list[ExperimentRecord]:
        rows = self.warehouse.query(
            f"SELECT {_COLUMNS} FROM {self.db}.experiments FINAL "
            "ORDER BY created_at DESC, experiment_id LIMIT {limit:UInt32}",
            {"limit": limit},
        ).rows
        return [_record(row) for row in rows]

    def save(self, record: ExperimentRecord) -> ExperimentRecord:
        """Write a new version of the run (the heartbeat too: updated_at is now)."""
        stamped = replace(
            record,
            updated_ms=max(now_ms(), record.updated_ms + 1),
            created_ms=record.created_ms or now_ms(),
        )
        self.warehouse.command(
            SAVE_RUN.sql(self.db),
            {
                "id": stamped.experiment_id,
                "challengers": list(stamped.challengers),
                "kind": stamped.source_kind,
                "source": stamped.source,
                "spec": orjson.dumps(stamped.source_spec).decode(),
                "total": stamped.total,
                "status": stamped.status,
                "rate": stamped.rate,
                "owner": stamped.owner,
                "message": redact_text(stamped.message),  # stored: no credentials in it
                "created": stamped.created_ms,
                "updated": stamped.updated_ms,
            },
        )
        return stamped

    # -- items --------------------------------------------------------------------------------
    def record_submissions(self, experiment_id: str, request_ids: Sequence[str]) -> None:
        if not request_ids:
            return
        self.warehouse.command(
            RECORD_SUBMISSIONS.sql(self.db),
            {"id": experiment_id, "ids": list(request_ids), "at": now_ms()},
        )

    def record_not_routed(self, experiment_id: str, routes: Mapping[str, Sequence[str]]) -> None:
        """Requests the router closed without asking these challengers (latest row wins)."""
        if not routes:
            return
        self.warehouse.command(
            RECORD_NOT_ROUTED.sql(self.db),
            {
                "id": experiment_id,
                "ids": list(routes),
                "names": [list(names) for names in routes.values()],
                "at": now_ms() + 1,  # after a submission recorded in the same second
            },
        )

    def not_routed_challengers(self, experiment_id: str) -> dict[str, frozenset[str]]:
        """request id -> challengers the router did not route its latest submission to."""
        rows = self.warehouse.query(
            f"""SELECT request_id, argMax(not_routed, submitted_at) AS names
            FROM {self.db}.experiment_submissions
            WHERE experiment_id = {{id:String}}
            GROUP BY request_id
            HAVING notEmpty(names)""",
            {"id": experiment_id},
        ).rows
        return {str(row[0]): frozenset(str(c) for c in row[1]) for row in rows}

    def compared_challengers(self, experiment_id: str) -> dict[str, frozenset[str]]:
        """request id -> challengers that already have a (non-late) comparison."""
        rows = self.warehouse.query(
            f"""SELECT request_id, groupUniqArray(toString(challenger))
            FROM {self.db}.comparisons
            WHERE experiment_id = {{id:String}} AND is_late = 0
            GROUP BY request_id""",
            {"id": experiment_id},
        ).rows
        return {str(row[0]): frozenset(str(c) for c in row[1]) for row in rows}

    def stored_comparisons(self, experiment_id: str) -> int:
        """(request, challenger) pairs of the run with a comparison in ClickHouse."""
        return int(
            self.warehouse.query(
                f"""SELECT uniqExact(request_id, challenger) FROM {self.db}.comparisons
                WHERE experiment_id = {{id:String}} AND is_late = 0""",
                {"id": experiment_id},
            ).scalar()
            or 0
        )
