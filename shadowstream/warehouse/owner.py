"""Sharing one chDB directory between processes.

chDB locks its data directory: only one process can open it. The long-running
pipeline process owns it; it serves a loopback HTTP endpoint and writes an
*owner file* beside the directory (``<path>.owner.json``: pid, endpoint URL and
a random token, mode 0600). Commands run in another terminal (``shadow
report``, ``shadow gate``, ``shadow batch status``) find the owner file, check
the owner is alive, and send their SQL there. When nobody owns the directory
they open it themselves.

Least privilege:

* the owner file is written to a new file of a random name (``O_CREAT |
  O_EXCL``, mode 0600: never an existing file, never through a link) and
  renamed over the target (a planted link is replaced, not followed); it is
  read only if it is a regular file of this user that nobody else can read;
* the endpoint runs queries with ClickHouse's ``readonly`` setting, one
  reading statement per request; writes only as its own named commands
  (see :mod:`shadowstream.warehouse.commands`), never SQL sent to it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import stat
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shadowstream.core.errors import WarehouseError, WarehouseUnavailableError
from shadowstream.warehouse.client import QueryResult, Warehouse
from shadowstream.warehouse.commands import run_command, statement_named
from shadowstream.warehouse.readonly import ReadOnlyViolation, query_read_only

SQL_PATH = "/shadow/sql"
MAX_BODY_BYTES = 4 * 1024 * 1024
log = logging.getLogger(__name__)


def owner_file(path: Path) -> Path:
    return path.with_name(path.name + ".owner.json")


@dataclass(frozen=True)
class OwnerInfo:
    pid: int
    endpoint: str
    token: str


def register_owner(path: Path, endpoint: str) -> OwnerInfo:
    """Announce this process as the owner of the chDB directory ``path``.

    The file is created new (random name, ``O_EXCL``, 0600), so a file or link
    planted beforehand is never written through, then renamed into place.
    """
    info = OwnerInfo(os.getpid(), endpoint, secrets.token_urlsafe(24))
    target = owner_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": info.pid, "endpoint": info.endpoint, "token": info.token}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)  # replaces a link at the target; never follows it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return info


def _read_owner_file(target: Path) -> dict[str, Any] | None:
    """The owner file's content, if it is a regular file of ours that only we can read."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "r") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            log.warning("ignoring %s: not owned by this user, or readable by others", target)
            return None
        try:
            raw = json.loads(handle.read(64 * 1024))
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def unregister_owner(path: Path) -> None:
    target = owner_file(path)
    raw = _read_owner_file(target)
    if raw is not None and raw.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
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
    raw = _read_owner_file(owner_file(path))
    if raw is None:
        return None
    try:
        info = OwnerInfo(int(raw["pid"]), str(raw["endpoint"]), str(raw["token"]))
    except (ValueError, KeyError, TypeError):
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
    """Serve one request of the owner endpoint.

    ``{"kind": "query", "sql", "parameters"}``: one reading statement, run
    with ClickHouse's readonly setting. ``{"kind": "command", "name",
    "parameters"}``: one of the owner's own registered writes. Anything else
    is refused (400 malformed, 403 not allowed, 413 too large).
    """
    if not auth_header or not secrets.compare_digest(auth_header, f"Bearer {token}"):
        return 403, orjson.dumps({"error": "forbidden"})
    if len(body) > MAX_BODY_BYTES:
        return 413, orjson.dumps({"error": "request too large"})
    try:
        request = orjson.loads(body)
        kind = request.get("kind", "query")
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, dict) or kind not in ("query", "command"):
            raise TypeError
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return 400, orjson.dumps({"error": "bad request"})
    try:
        if kind == "command":
            if "sql" in request:
                return 403, orjson.dumps(
                    {"error": "the owner endpoint runs its own write commands only, not SQL"}
                )
            result = run_command(warehouse, str(request.get("name", "")), parameters)
            payload: dict[str, Any] = {"result": _jsonable_result(result)}
        else:
            res = query_read_only(warehouse, str(request.get("sql", "")), parameters)
            payload = {"columns": list(res.column_names), "rows": res.rows}
        return 200, orjson.dumps(payload, default=_jsonable, option=orjson.OPT_NON_STR_KEYS)
    except ReadOnlyViolation as exc:
        return 403, orjson.dumps({"error": f"refused: {exc}"})
    except WarehouseError as exc:
        return 500, orjson.dumps({"error": str(exc)})


def _jsonable_result(result: Any) -> Any:
    if result is None or isinstance(result, int | str | float | bool):
        return result
    if isinstance(result, dict | list | tuple):
        return result
    return None


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
        """A write, sent as the name of the owner's own statement (never as SQL)."""
        statement = statement_named(sql, self.database)
        if statement is None:
            raise WarehouseError(
                "the process owning the chDB directory runs only its own write commands; "
                "stop it to run this one"
            )
        return self.call(statement.name, parameters)

    def call(self, name: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run one of the owner's registered commands or procedures by name."""
        return self._call(
            {"kind": "command", "name": name, "parameters": dict(parameters or {})}
        ).get("result")

    def insert_avro(
        self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
    ) -> None:
        raise WarehouseError("inserts go through the sink, not the owner endpoint")

    def close(self) -> None:
        pass
