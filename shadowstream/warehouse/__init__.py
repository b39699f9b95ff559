"""The ClickHouse client every stage shares: chDB in-process (``chdb:///path``), a
server (``http(s)://``), or the loopback endpoint of the process that owns chDB."""

from shadowstream.warehouse.client import QueryResult, Warehouse, connect, open_warehouse

__all__ = ["QueryResult", "Warehouse", "connect", "open_warehouse"]
