"""ClickHouse storage: chDB in-process (``chdb:///path``) or a server (``http(s)://``)."""

from sinks.clickhouse.warehouse import QueryResult, Warehouse, connect, open_warehouse

__all__ = ["QueryResult", "Warehouse", "connect", "open_warehouse"]
