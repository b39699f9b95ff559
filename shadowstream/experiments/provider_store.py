"""Provider batch jobs of a run in ClickHouse (``experiment_provider_batches``, migration 0031).

A chunk is written before its batch is created (status ``creating``, no id),
again as soon as the provider returned the batch id, and on every change seen
when polling. A restarted run therefore polls the batches already created
instead of creating (and paying for) them again; a ``creating`` row without
an id is a run killed during the create call, looked up by its metadata
where the provider keeps metadata (OpenAI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from shadowstream.experiments.providers.base import BatchState
from shadowstream.experiments.store import now_ms
from shadowstream.warehouse.client import Warehouse
from shadowstream.warehouse.commands import write_statement

CREATING = "creating"
TABLE = "experiment_provider_batches"

# registered, so the chDB owner endpoint runs it by name for a batch run in another process
SAVE_CHUNK = write_statement(
    "experiments.save_provider_batch",
    """INSERT INTO {db}.experiment_provider_batches
            (experiment_id, challenger, chunk, provider, batch_id, first_item, end_item, requests,
             status, ended, total, succeeded, errored, expired, cancelled, processing,
             input_file_id, output_file_id, error_file_id, message, created_at, updated_at)
            VALUES ({e:String}, {c:String}, {chunk:UInt32}, {p:String}, {b:String},
                    {first:UInt64}, {end:UInt64}, {n:UInt32}, {status:String},
                    {ended:UInt8}, {total:UInt32}, {ok:UInt32}, {err:UInt32},
                    {exp:UInt32}, {can:UInt32}, {proc:UInt32}, {inf:String},
                    {outf:String}, {errf:String}, {msg:String},
                    fromUnixTimestamp64Milli({created:Int64}, 'UTC'),
                    fromUnixTimestamp64Milli({updated:Int64}, 'UTC'))""",
)
_COUNTS = ("total", "succeeded", "errored", "expired", "cancelled", "processing")


@dataclass(frozen=True)
class ChunkRecord:
    """One provider batch of a run: the source items [first_item, end_item) it covers."""

    experiment_id: str
    challenger: str
    chunk: int
    provider: str
    first_item: int
    end_item: int
    requests: int
    state: BatchState
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def batch_id(self) -> str:
        return self.state.batch_id

    def covers(self, ordinal: int) -> bool:
        return self.first_item <= ordinal < self.end_item

    def with_state(self, state: BatchState) -> ChunkRecord:
        return replace(self, state=state)


def _record(row: Sequence[Any]) -> ChunkRecord:
    (experiment, challenger, chunk, provider, batch_id, first, end, requests, status, ended) = row[
        :10
    ]
    counts = dict(zip(_COUNTS, (int(v) for v in row[10:16]), strict=True))
    state = BatchState(
        batch_id=str(batch_id),
        status=str(status),
        ended=bool(ended),
        input_file_id=str(row[16]),
        output_file_id=str(row[17]),
        error_file_id=str(row[18]),
        message=str(row[19]),
        **counts,
    )
    return ChunkRecord(
        str(experiment),
        str(challenger),
        int(chunk),
        str(provider),
        int(first),
        int(end),
        int(requests),
        state,
        int(row[20]),
        int(row[21]),
    )


class ProviderBatchStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.db = warehouse.database

    def has_table(self) -> bool:
        found = self.warehouse.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            {"db": self.db, "t": TABLE},
        ).scalar()
        return bool(found)

    def chunks(self, experiment_id: str) -> list[ChunkRecord]:
        rows = self.warehouse.query(
            f"""SELECT experiment_id, toString(challenger), chunk, toString(provider), batch_id,
                   first_item, end_item, requests, toString(status), ended,
                   total, succeeded, errored, expired, cancelled, processing,
                   input_file_id, output_file_id, error_file_id, message,
                   toUnixTimestamp64Milli(created_at), toUnixTimestamp64Milli(updated_at)
            FROM {self.db}.{TABLE} FINAL
            WHERE experiment_id = {{id:String}}
            ORDER BY challenger, chunk""",
            {"id": experiment_id},
        ).rows
        return [_record(row) for row in rows]

    def save(self, record: ChunkRecord) -> ChunkRecord:
        stamped = replace(
            record,
            updated_ms=max(now_ms(), record.updated_ms + 1),
            created_ms=record.created_ms or now_ms(),
        )
        s = stamped.state
        self.warehouse.command(
            SAVE_CHUNK.sql(self.db),
            {
                "e": stamped.experiment_id,
                "c": stamped.challenger,
                "chunk": stamped.chunk,
                "p": stamped.provider,
                "b": s.batch_id,
                "first": stamped.first_item,
                "end": stamped.end_item,
                "n": stamped.requests,
                "status": s.status,
                "ended": int(s.ended),
                "total": s.total,
                "ok": s.succeeded,
                "err": s.errored,
                "exp": s.expired,
                "can": s.cancelled,
                "proc": s.processing,
                "inf": s.input_file_id,
                "outf": s.output_file_id,
                "errf": s.error_file_id,
                "msg": s.message[:1000],
                "created": stamped.created_ms,
                "updated": stamped.updated_ms,
            },
        )
        return stamped
