"""One way to talk to ClickHouse, whether it runs in-process (chDB) or as a server.

URLs:

* ``chdb:///abs/path`` or ``chdb://relative/path``: the real ClickHouse engine
  in this process, data on disk (clickhouse-connect's chDB backend). One engine
  per process, and one process per data directory: while another process owns
  the directory (the running pipeline), :func:`open_warehouse` routes queries
  to that process's loopback endpoint instead (see :mod:`shadowstream.warehouse.owner`).
* ``http(s)://[user[:password]@]host:port``: a ClickHouse server.

Every query takes bound parameters (``{name:Type}`` placeholders); user input
is never formatted into SQL.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

from shadowstream.core.errors import (
    ConfigError,
    WarehouseError,
    WarehouseRejectedError,
    WarehouseUnavailableError,
)
from shadowstream.core.secrets import redact_text, redact_url
from shadowstream.warehouse.avro_container import container

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryResult:
    column_names: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.column_names, row, strict=False)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None


@runtime_checkable
class Warehouse(Protocol):
    """What every stage needs from ClickHouse."""

    url: str
    database: str

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult: ...

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any: ...

    def insert_avro(
        self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
    ) -> None: ...

    def close(self) -> None: ...


def chdb_path(url: str) -> Path | None:
    """The data directory of a ``chdb://`` URL, or None for a server URL."""
    if not url.startswith("chdb://"):
        return None
    raw = url[len("chdb://") :]
    if not raw or raw == "/":
        raise WarehouseError(f"chDB URL needs a path: {url!r}")
    return Path(raw).expanduser().resolve()


# ClickHouse error codes that describe the server, the session or the tables, never
# the rows of an insert: retrying the same rows later may succeed, splitting them will
# not help. (ClickHouse's src/Common/ErrorCodes.cpp)
SERVER_SIDE_CODES = frozenset(
    {
        3, 8, 16, 44, 47, 48, 49, 57, 60, 62, 74, 75, 76, 80, 81, 159, 164, 173, 192, 193,
        194, 201, 202, 203, 209, 210, 218, 225, 236, 241, 242, 243, 279, 319, 394, 425,
        439, 497, 516, 999, 1000,
    }
)  # fmt: skip
_CODE = re.compile(r"Code: (\d+)\.")


def row_error_code(text: str) -> int | None:
    """The ClickHouse error code of ``text`` if it is about the rows of an insert."""
    match = _CODE.search(text)
    if match is None:
        return None
    code = int(match.group(1))
    if code in SERVER_SIDE_CODES or "while reading header" in text:
        return None  # the tables or the writer schema, not one row: every row fails alike
    if code == 252 and "partitions for single INSERT block" not in text:
        return None  # too many parts: merges are behind, inserts must wait
    return code


def _map_error(exc: Exception, url: str) -> WarehouseError:
    from clickhouse_connect.driver.exceptions import OperationalError

    text = redact_text(str(exc))
    url = redact_url(url)
    if isinstance(exc, OperationalError) or "Connection refused" in text:
        reason = "connection refused" if "refused" in text else " ".join(text.split())[:200]
        return WarehouseUnavailableError(
            f"ClickHouse at {redact_url(url)} is unavailable ({reason})"
        )
    if "Cannot lock file" in text or "already running" in text:
        return WarehouseUnavailableError(
            f"the chDB directory of {url} is in use by another process "
            "(run the command while the pipeline is up, so it is routed there, or stop it first)"
        )
    code = row_error_code(text)
    if code is not None:
        return WarehouseRejectedError(f"ClickHouse refused the data: {text[:500]}", code)
    return WarehouseError(f"ClickHouse error: {text[:500]}")


def _open_chdb(path: Path, lock_wait_s: float) -> Any:
    """Open the chDB engine on ``path``; while another process (a short-lived
    ``shadow report``, say) holds the directory, retry for ``lock_wait_s``."""
    import importlib.util

    import clickhouse_connect

    if importlib.util.find_spec("chdb") is None:
        raise ConfigError(
            f"chdb://{path} needs the embedded ClickHouse engine, which is not installed: "
            "pip install 'shadowstream[chdb]', or use a ClickHouse server "
            "(SHADOW_CLICKHOUSE_URL=http://host:8123)"
        )

    deadline = time.monotonic() + lock_wait_s
    delay = 0.2
    while True:
        try:
            return clickhouse_connect.get_client(interface="chdb", path=str(path))
        except Exception as exc:
            if "Cannot lock file" not in str(exc) or time.monotonic() >= deadline:
                raise
            log.warning("chDB directory %s is in use by another process; retrying", path)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


_CHDB_CLIENTS: dict[Path, Any] = {}
_CHDB_LOCK = threading.RLock()


COLUMNS_TTL_S = 60.0  # how stale the insert's column list may be


class ClickHouseWarehouse:
    """Direct access through clickhouse-connect (chDB backend or HTTP)."""

    def __init__(
        self,
        url: str,
        database: str = "shadow",
        password: str | None = None,
        lock_wait_s: float = 0.0,
    ) -> None:
        self.url = url
        self.database = database
        self.lock_wait_s = lock_wait_s
        self._path = chdb_path(url)
        self._lock = _CHDB_LOCK if self._path is not None else threading.RLock()
        # table -> (its columns, when read): re-read after any DDL through this client
        # (migrations) and at least every COLUMNS_TTL_S (a migration by another process)
        self._columns: dict[str, tuple[frozenset[str], float]] = {}
        self._client = self._connect(password)

    def _connect(self, password: str | None) -> Any:
        import clickhouse_connect

        try:
            if self._path is not None:
                with _CHDB_LOCK:
                    client = _CHDB_CLIENTS.get(self._path)
                    if client is None:
                        self._path.mkdir(parents=True, exist_ok=True)
                        client = _open_chdb(self._path, self.lock_wait_s)
                        _CHDB_CLIENTS[self._path] = client
                    return client
            parts = urlsplit(self.url)
            query = parse_qs(parts.query)
            return clickhouse_connect.get_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=unquote(parts.username) if parts.username else "default",
                password=password or (unquote(parts.password) if parts.password else ""),
                secure=parts.scheme == "https",
                connect_timeout=float(query.get("connect_timeout", ["10"])[0]),
                send_receive_timeout=float(query.get("timeout", ["300"])[0]),
            )
        except ConfigError:
            raise
        except Exception as exc:
            raise _map_error(exc, self.url) from None

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        """``settings``: ClickHouse settings of this query only (``readonly``, say)."""
        try:
            with self._lock:
                result = self._client.query(
                    sql, parameters=dict(parameters or {}), settings=dict(settings or {})
                )
                return QueryResult(tuple(result.column_names), list(result.result_rows))
        except Exception as exc:
            raise _map_error(exc, self.url) from None

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        self._columns.clear()  # DDL may have added columns
        try:
            with self._lock:
                return self._client.command(sql, parameters=dict(parameters or {}))
        except Exception as exc:
            raise _map_error(exc, self.url) from None

    def insert_avro(
        self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
    ) -> None:
        if not bodies:
            return
        block = container(dict(writer_schema), bodies)
        columns = self._insert_columns(table, writer_schema)
        try:
            with self._lock:
                self._client.raw_insert(
                    f"{self.database}.{table}", columns, insert_block=block, fmt="Avro"
                )
        except Exception as exc:
            raise _map_error(exc, self.url) from None

    def _insert_columns(self, table: str, writer_schema: Mapping[str, Any]) -> list[str] | None:
        """The schema's fields that the table has: a table column the schema lacks (added
        by a newer version's migration) takes its default, and a field the table lacks
        (a newer writer, older tables) is skipped, so sinks and tables of neighbouring
        versions work together during a rolling upgrade."""
        fields = [str(f["name"]) for f in writer_schema.get("fields", [])]
        cached = self._columns.get(table)
        now = time.monotonic()
        if cached is not None and now - cached[1] < COLUMNS_TTL_S:
            known = cached[0]
        else:
            rows = self.query(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                {"db": self.database, "t": table},
            ).rows
            known = frozenset(str(r[0]) for r in rows)
            self._columns[table] = (known, now)
        chosen = [f for f in fields if f in known]
        return chosen if known else (fields or None)

    def close(self) -> None:
        if self._path is None:
            with contextlib.suppress(Exception):
                self._client.close()


def connect(
    url: str, database: str = "shadow", password: str | None = None, lock_wait_s: float = 0.0
) -> Warehouse:
    """Open ClickHouse directly (this process becomes the chDB owner for a chdb:// URL).

    ``lock_wait_s``: how long to wait for another process to release the chDB
    directory (the long-running sink waits; one-off commands do not).
    """
    return ClickHouseWarehouse(url, database, password, lock_wait_s)


def open_warehouse(
    url: str, database: str = "shadow", password: str | None = None, *, readonly: bool = False
) -> Warehouse:
    """Open ClickHouse for a command: via the running owner process if there is one.

    ``readonly``: every query runs with ClickHouse's ``readonly`` setting and
    writes are refused (``shadow report``, ``gate``, ``batch status``).
    """
    path = chdb_path(url)
    warehouse: Warehouse | None = None
    if path is not None and path not in _CHDB_CLIENTS:
        from shadowstream.warehouse.owner import RemoteWarehouse, live_owner

        owner = live_owner(path)
        if owner is not None:
            warehouse = RemoteWarehouse(url, database, owner)
    if warehouse is None:
        warehouse = connect(url, database, password)
    if readonly:
        from shadowstream.warehouse.readonly import ReadOnlyWarehouse

        return ReadOnlyWarehouse(warehouse)
    return warehouse
