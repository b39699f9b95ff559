"""Read-only access: ClickHouse's ``readonly`` setting on every query, and one statement only.

``shadow report``, ``shadow gate`` and ``shadow batch status`` only read. They
run every query with ClickHouse's ``readonly`` setting (``1`` on the embedded
engine; ``2`` on a server, where the HTTP client sends settings of its own
with each query: writes and DDL are refused all the same, and ``readonly``
itself cannot be lowered), directly or through the owner endpoint, which
applies it to every query it is sent whoever sends it.

:func:`check_single_read` is the owner endpoint's first line: one statement
(no ``;`` outside strings and comments, no unterminated string or comment),
and it must start with a reading keyword.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from shadowstream.core.errors import WarehouseError
from shadowstream.warehouse.client import ClickHouseWarehouse, QueryResult, Warehouse, chdb_path

READ_KEYWORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "(")
_TOKENS = re.compile(
    r"'(?:[^'\\]|\\.|'')*'"  # string literal
    r'|"(?:[^"\\]|\\.)*"'  # quoted identifier
    r"|`(?:[^`\\]|\\.)*`"  # quoted identifier
    r"|--[^\n]*|#[^\n]*"  # line comments
    r"|/\*.*?\*/",  # block comment
    re.DOTALL,
)


class ReadOnlyViolation(WarehouseError):
    """A request to the read-only path that is not one reading statement."""


def read_only_settings(url: str) -> dict[str, int]:
    return {"readonly": 1} if chdb_path(url) is not None else {"readonly": 2}


def check_single_read(sql: str) -> None:
    """Raise ReadOnlyViolation unless ``sql`` is exactly one reading statement."""
    bare = _TOKENS.sub(" ", sql)
    if re.search(r"'|\"|`|/\*", bare):
        raise ReadOnlyViolation("unterminated string, identifier or comment")
    body = bare.strip().rstrip(";").strip()
    if ";" in body:
        raise ReadOnlyViolation("one statement per request (multi-statement bodies are refused)")
    first = body.lstrip("(").split(None, 1)[0].upper() if body.lstrip("(") else ""
    if not body or (first not in READ_KEYWORDS and not body.startswith("(")):
        raise ReadOnlyViolation(f"only reading statements are run here, not {first or 'nothing'}")


def query_read_only(
    warehouse: Warehouse, sql: str, parameters: Mapping[str, Any] | None = None
) -> QueryResult:
    """One reading statement, run with ClickHouse's readonly setting."""
    check_single_read(sql)
    if not isinstance(warehouse, ClickHouseWarehouse):
        raise WarehouseError("read-only queries need a direct ClickHouse connection")
    return warehouse.query(sql, parameters, settings=read_only_settings(warehouse.url))


class ReadOnlyWarehouse:
    """A warehouse for commands that only read: readonly queries, writes refused."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.url = inner.url
        self.database = inner.database

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        if isinstance(self.inner, ClickHouseWarehouse):
            return self.inner.query(sql, parameters, settings=read_only_settings(self.url))
        return self.inner.query(sql, parameters)  # the owner endpoint: readonly there

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        raise WarehouseError("this command only reads: it cannot write to ClickHouse")

    def insert_avro(
        self, table: str, writer_schema: Mapping[str, Any], bodies: Sequence[bytes]
    ) -> None:
        raise WarehouseError("this command only reads: it cannot write to ClickHouse")

    def close(self) -> None:
        self.inner.close()
