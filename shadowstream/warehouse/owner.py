"""Sharing one chDB directory between processes.

chDB locks its data directory: only one process can open it. The long-running
pipeline process owns it; it serves a loopback HTTP endpoint and writes an
*owner file* beside the directory (``<path>.owner.json``: pid, endpoint URL and
a random token, mode 0600). Commands run in another terminal (``shadow
report``, ``shadow gate``, ``shadow batch status``) find the owner file, check
the owner is alive, and send their SQL there. When nobody owns the directory
they open it themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shadowstream.core.errors import WarehouseError, WarehouseUnavailableError
from shadowstream.warehouse.client import QueryResult, Warehouse

SQL_PATH = "/shadow/sql"


def owner_file(path: Path) -> Path:
    return path.with_name(path.name + ".owner.json")


@dataclass(frozen=True)
class OwnerInfo:
    pid: int
    endpoint: str
    token: str


def register_owner(path: Path, endpoint: str) -> OwnerInfo:
    """Announce this process as the owner of the chDB directory ``path``."""
    info = OwnerInfo(os.getpid(), endpoint, secrets.token_urlsafe(24))
    target = owner_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": info.pid, "endpoint": info.endpoint, "token": info.token}, handle)
    os.replace(tmp, target)
    return info


def unregister_owner(path: Path) -> None:
    target = owner_file(path)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(target.read_text()).get("pid") == os.getpid():
            target.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_owner(path: Path) -> OwnerInfo | None:
    """The running owner of ``path``, or None (stale owner files are ignored)."""
    try:
        raw = json.loads(owner_file(path).read_text())
        info = OwnerInfo(int(raw["pid"]), str(raw["endpoint"]), str(raw["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.pid == os.getpid() or not _alive(info.pid):
        return None
    return info


# -- the owner's side ------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError


def handle_sql(
    warehouse: Warehouse, token: str, body: bytes, auth_header: str | None
) -> tuple[int, bytes]:
    """Serve one request of the owner endpoint: ``{"kind", "sql", "parameters"}``."""
    if not auth_header or not secrets.compare_digest(auth_header, f"Bearer {token}"):
        return 403, orjson.dumps({"error": "forbidden"})
    try:
        request = orjson.loads(body)
        sql = str(request["sql"])
        parameters = request.get("parameters") or {}
        kind = request.get("kind", "query")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 400, orjson.dumps({"error": "bad request"})
    try:
        if kind == "command":
            result = warehouse.command(sql, parameters)
            payload: dict[str, Any] = {"result": result if isinstance(result, int | str) else None}
        else:
            res = warehouse.query(sql, parameters)
            payload = {"columns": list(res.column_names), "rows": res.rows}
        return 200, orjson.dumps(payload, default=_jsonable, option=orjson.OPT_NON_STR_KEYS)
    except WarehouseError as exc:
        return 500, orjson.dumps({"error": str(exc)})


# -- everybody else's side ---------------------------------------------------------------
def _revive(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value)
    return value


class RemoteWarehouse:
    """Runs queries in the process that owns the chDB directory."""

    def __init__(self, url: str, database: str, owner: OwnerInfo, timeout: float = 120.0) -> None:
        self.url = url
        self.database = database
        self.owner = owner
        self.timeout = timeout

    def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.owner.endpoint,
            data=orjson.dumps(payload, default=_jsonable),
            headers={
                "Authorization": f"Bearer {self.owner.token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return orjson.loads(response.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            try:
                message = orjson.loads(exc.read()).get("error", str(exc))
            except Exception:
                message = str(exc)
            raise WarehouseError(message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise WarehouseUnavailableError(
                f"the process owning {self.url} (pid {self.owner.pid}) did not answer: {exc}"
            ) from None

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        data = self._call({"kind": "query", "sql": sql, "parameters": dict(parameters or {})})
        rows = [tuple(_revive(v) for v in row) for row in data["rows"]]
        return QueryResult(tuple(data["columns"]), rows)

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        return self._call(
            {"kind": "command", "sql": sql, "parameters": dict(parameters or {})}
        ).get("result")

    def insert_avro(
        self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
    ) -> None:
        raise WarehouseError("inserts go through the sink, not the owner endpoint")

    def close(self) -> None:
        pass
