"""Least privilege around the embedded ClickHouse: the owner file and the owner endpoint.

Real chDB (the session engine) and real files; the endpoint's handler is called as the
pipeline's web view calls it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadowstream.core.errors import WarehouseError
from shadowstream.warehouse.client import connect, open_warehouse
from shadowstream.warehouse.commands import write_statement
from shadowstream.warehouse.owner import (
    OwnerInfo,
    RemoteWarehouse,
    handle_sql,
    live_owner,
    owner_file,
    register_owner,
    unregister_owner,
)

TOKEN = "test-token"
INSERT_ONE = write_statement(
    "tests.owner.insert_one", "INSERT INTO {db}.owned (a) VALUES ({a:Int32})"
)


def test_owner_file_is_new_private_and_never_written_through_a_link(tmp_path: Path) -> None:
    data = tmp_path / "chdb"
    target = owner_file(data)
    # what an attacker could plant: the old fixed temp name, world-writable and readable,
    # and a link at the owner file pointing at a file the attacker can read
    planted_tmp = target.with_suffix(".tmp")
    planted_tmp.write_text("planted")
    planted_tmp.chmod(0o666)
    stolen = tmp_path / "attacker-readable"
    stolen.write_text("")
    target.symlink_to(stolen)

    info = register_owner(data, "http://127.0.0.1:1/shadow/sql")

    assert stolen.read_text() == ""  # the token never went through the link
    assert planted_tmp.read_text() == "planted"  # the planted file was not reused
    mode = target.lstat().st_mode
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600
    assert json.loads(target.read_text())["token"] == info.token
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == [planted_tmp.name]

    # a second registration replaces it the same way
    again = register_owner(data, "http://127.0.0.1:2/shadow/sql")
    assert json.loads(target.read_text())["token"] == again.token != info.token
    unregister_owner(data)
    assert not target.exists()


def test_an_owner_file_others_could_read_or_a_link_is_ignored(tmp_path: Path) -> None:
    data = tmp_path / "chdb"
    target = owner_file(data)
    parent_pid = os.getppid()  # alive, and not us
    content = {"pid": parent_pid, "endpoint": "http://127.0.0.1:9/shadow/sql", "token": "t"}
    target.write_text(json.dumps(content))
    target.chmod(0o600)
    assert live_owner(data) == OwnerInfo(parent_pid, content["endpoint"], "t")
    target.chmod(0o644)
    assert live_owner(data) is None
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps(content))
    real.chmod(0o600)
    target.unlink()
    target.symlink_to(real)
    assert live_owner(data) is None


@pytest.fixture
def owned(chdb_url: str, unique: str) -> Any:
    warehouse = connect(chdb_url, f"o_{unique}")
    warehouse.command(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}")
    warehouse.command(
        f"CREATE TABLE {warehouse.database}.owned (a Int32) ENGINE = MergeTree ORDER BY a"
    )
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def call(warehouse: Any, request: dict[str, Any], token: str = TOKEN) -> tuple[int, Any]:
    status, body = handle_sql(warehouse, TOKEN, orjson.dumps(request), f"Bearer {token}")
    return status, orjson.loads(body)


def test_owner_endpoint_reads_read_only_and_writes_only_its_own_commands(owned: Any) -> None:
    db = owned.database
    assert call(owned, {"sql": "SELECT 1"}, token="wrong")[0] == 403
    status, body = call(owned, {"sql": "SELECT getSetting('readonly')"})
    assert (status, body["rows"]) == (200, [[1]])  # ClickHouse's readonly, on every query
    refused = [
        f"SELECT 1; DROP TABLE {db}.owned",
        f"SELECT 1;DROP TABLE {db}.owned;",
        f"INSERT INTO {db}.owned VALUES (1)",
        f"DROP TABLE {db}.owned",
        f"ALTER TABLE {db}.owned DELETE WHERE 1",
        f"SELECT 1 /* unterminated ; DROP TABLE {db}.owned",
        "SELECT ';' ; SELECT 2",
        "",
    ]
    for sql in refused:
        status, body = call(owned, {"sql": sql})
        assert status == 403, (sql, body)
    assert call(owned, {"sql": "SELECT ';' AS semicolon -- ; fine"})[0] == 200
    # even past the statement check, ClickHouse refuses: the setting travels with the query
    status, body = call(owned, {"sql": "SELECT 1 SETTINGS readonly = 0"})
    assert status == 500 and "readonly" in body["error"]

    # writes: SQL is refused, unknown names are refused, registered commands run
    status, body = call(owned, {"kind": "command", "sql": f"INSERT INTO {db}.owned VALUES (2)"})
    assert status == 403 and "own write commands" in body["error"]
    assert call(owned, {"kind": "command", "name": "drop_everything"})[0] == 500
    status, _ = call(owned, {"kind": "command", "name": INSERT_ONE.name, "parameters": {"a": 7}})
    assert status == 200
    assert owned.query(f"SELECT groupArray(a) FROM {db}.owned").scalar() == [7]
    assert call(owned, {"kind": "nonsense"})[0] == 400
    huge = handle_sql(owned, TOKEN, b" " * (5 * 1024 * 1024), f"Bearer {TOKEN}")
    assert huge[0] == 413


def test_remote_and_read_only_warehouses_refuse_foreign_writes(owned: Any, chdb_url: str) -> None:
    owner = OwnerInfo(os.getppid(), "http://127.0.0.1:9/shadow/sql", TOKEN)
    remote = RemoteWarehouse(chdb_url, owned.database, owner)
    with pytest.raises(WarehouseError, match="only its own write commands"):
        remote.command(f"DROP TABLE {owned.database}.owned")
    reader = open_warehouse(chdb_url, owned.database, readonly=True)
    assert reader.query("SELECT getSetting('readonly')").scalar() == 1
    with pytest.raises(WarehouseError, match="only reads"):
        reader.command(f"DROP TABLE {owned.database}.owned")
    assert owned.query("SELECT getSetting('readonly')").scalar() == 0  # the owner still writes


def test_migrations_run_in_the_owner_by_name(owned: Any) -> None:
    """`shadow db migrate` while the pipeline owns the directory: a named procedure."""
    import shadowstream.sinks.clickhouse.migrations  # noqa: F401 - registers "migrate"

    status, body = call(
        owned, {"kind": "command", "name": "migrate", "parameters": {"retention_days": 30}}
    )
    assert status == 200, body
    assert "0001_comparisons" in body["result"]["applied"]
    status, body = call(
        owned, {"kind": "command", "name": "migrate", "parameters": {"retention_days": 30}}
    )
    assert (status, body["result"]["applied"]) == (200, [])


def test_commands_beside_the_pipeline_write_through_the_owner_by_name(
    owned: Any, chdb_url: str
) -> None:
    """`shadow batch run` and `shadow watch` in a second terminal write through the
    pipeline's owner endpoint: every statement they issue must be one it runs by name."""
    import datetime as dt
    from types import SimpleNamespace

    from shadowstream.analytics.watch import Watch, WatchEvent
    from shadowstream.experiments.provider_store import ChunkRecord, ProviderBatchStore
    from shadowstream.experiments.providers.base import BatchState
    from shadowstream.experiments.store import ExperimentRecord, ExperimentStore
    from shadowstream.sinks.clickhouse.migrations import migrate

    migrate(owned)

    class Routed(RemoteWarehouse):  # the real client, its HTTP hop replaced by the handler
        def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
            status, body = handle_sql(
                owned, TOKEN, orjson.dumps(payload, default=str), f"Bearer {TOKEN}"
            )
            data: dict[str, Any] = orjson.loads(body)
            if status != 200:
                raise WarehouseError(data.get("error", str(status)))
            return data

    remote = Routed(chdb_url, owned.database, OwnerInfo(os.getpid(), "http://unused", TOKEN))
    runs = ExperimentStore(remote)
    runs.save(ExperimentRecord("b-1", ("fast",), "evalfile", "evals.jsonl", {}, 2, "running", 5.0))
    runs.record_submissions("b-1", ["b-1:0", "b-1:1"])
    runs.record_not_routed("b-1", {"b-1:1": ["fast"]})
    chunks = ProviderBatchStore(remote)
    chunks.save(
        ChunkRecord("b-1", "fast", 0, "openai", 0, 2, 2, BatchState("batch_1", "done", True))
    )
    event = WatchEvent(
        dt.datetime.now(dt.UTC), "live", "fast", "verdict", "fail", "", (), (), 500, "control", "x"
    )
    Watch.record(SimpleNamespace(warehouse=remote), [event])  # type: ignore[arg-type]
    db = owned.database
    assert owned.query(f"SELECT count() FROM {db}.experiments FINAL").scalar() == 1
    assert owned.query(f"SELECT count() FROM {db}.experiment_submissions").scalar() >= 2
    assert (
        owned.query(f"SELECT batch_id FROM {db}.experiment_provider_batches").scalar() == "batch_1"
    )
    assert owned.query(f"SELECT verdict FROM {db}.watch_events").scalar() == "fail"
