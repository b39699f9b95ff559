"""Captured production traffic in ClickHouse: the requests and the champion's answers.

Reads ``requests`` (experiment ``live``) in a time range, filtered by endpoint
and attributes, sampled by ``cityHash64(request_id)``; the champion's stored
response (``responses``, role champion) is each item's reference. Items come
in ``(cityHash64(request_id), request_id)`` order, so ``--limit N`` is a
uniform random sample of N requests that is the same on every run, and pages
are read by keyset (``WHERE (h, id) > last``), never by OFFSET.

Requests without a stored champion response are replayed without a reference
(their comparison ends as ``champion_missing``, see docs/batch-experiments.md).
Every filter value is a bound parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shadowstream.experiments.filters import ItemFilter, glob_to_like
from shadowstream.experiments.ids import LIVE, check_source_id
from shadowstream.experiments.items import BatchItem, Reference
from shadowstream.schemas.records import Status
from shadowstream.warehouse.client import Warehouse

# the stored statuses a reference keeps (any other is an error)
_STATUSES: dict[str, Status] = {"ok": "ok", "error": "error", "timeout": "timeout"}


def _fmt_us(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class CapturedTraffic:
    warehouse: Warehouse
    since_us: int
    until_us: int
    filter: ItemFilter = field(default_factory=ItemFilter)
    kind: str = "captured"

    # -- the protocol ---------------------------------------------------------------
    def describe(self) -> str:
        text = f"captured traffic {_fmt_us(self.since_us)} - {_fmt_us(self.until_us)} UTC"
        detail = self.filter.describe()
        return f"{text} ({detail})" if detail else text

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "since_us": self.since_us,
            "until_us": self.until_us,
            "filter": self.filter.to_json(),
        }

    def count(self) -> int:
        where, params = self._where()
        n = int(
            self.warehouse.query(
                f"SELECT uniqExact(request_id) FROM {self._db}.requests WHERE {where}", params
            ).scalar()
            or 0
        )
        return n if self.filter.limit is None else min(n, self.filter.limit)

    def pages(self, page_size: int = 2_000) -> Iterator[list[BatchItem]]:
        where, params = self._where()
        remaining = self.filter.limit
        after: tuple[int, str] = (0, "")
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            keys = self.warehouse.query(
                f"""SELECT cityHash64(request_id) AS h, request_id
                FROM {self._db}.requests
                WHERE {where} AND (h, request_id) > ({{after_h:UInt64}}, {{after_id:String}})
                ORDER BY h, request_id
                LIMIT 1 BY h, request_id
                LIMIT {{page:UInt32}}""",
                {**params, "after_h": after[0], "after_id": after[1], "page": size},
            ).rows
            if not keys:
                return
            after = (int(keys[-1][0]), str(keys[-1][1]))
            ids = [str(row[1]) for row in keys]
            yield self._items(ids)
            if remaining is not None:
                remaining -= len(ids)
            if len(ids) < size:
                return

    # -- internals ------------------------------------------------------------------
    @property
    def _db(self) -> str:
        return self.warehouse.database

    def _where(self) -> tuple[str, dict[str, Any]]:
        clauses = [
            "experiment_id = {live:String}",
            "request_time >= fromUnixTimestamp64Micro({since_us:Int64}, 'UTC')",
            "request_time < fromUnixTimestamp64Micro({until_us:Int64}, 'UTC')",
        ]
        params: dict[str, Any] = {
            "live": LIVE,
            "since_us": self.since_us,
            "until_us": self.until_us,
        }
        if self.filter.endpoints:
            alternatives = []
            for i, pattern in enumerate(self.filter.endpoints):
                alternatives.append(f"endpoint LIKE {{endpoint_{i}:String}}")
                params[f"endpoint_{i}"] = glob_to_like(pattern)
            clauses.append("(" + " OR ".join(alternatives) + ")")
        for i, (key, values) in enumerate(sorted(self.filter.attributes.items())):
            clauses.append(
                f"attributes[{{attr_key_{i}:String}}] IN {{attr_values_{i}:Array(String)}}"
            )
            params[f"attr_key_{i}"] = key
            params[f"attr_values_{i}"] = list(values)
        if self.filter.fraction < 1.0:
            clauses.append("cityHash64(request_id) % 1000000 < {fraction_ppm:UInt64}")
            params["fraction_ppm"] = self.filter.fraction_ppm
        return " AND ".join(clauses), params

    def _items(self, ids: list[str]) -> list[BatchItem]:
        requests = self.warehouse.query(
            f"""SELECT request_id, service, endpoint, champion_model, payload, attributes
            FROM {self._db}.requests
            WHERE experiment_id = {{live:String}} AND request_id IN {{ids:Array(String)}}
            LIMIT 1 BY request_id""",
            {"live": LIVE, "ids": ids},
        ).rows
        champions = {
            str(row[0]): row
            for row in self.warehouse.query(
                f"""SELECT request_id, model, output, latency_ms, status, error,
                       tokens_in, tokens_out, tool_calls, cost, tool_trace
                FROM {self._db}.responses
                WHERE experiment_id = {{live:String}} AND role = 'champion'
                  AND request_id IN {{ids:Array(String)}}
                ORDER BY request_id, response_time DESC
                LIMIT 1 BY request_id""",
                {"live": LIVE, "ids": ids},
            ).rows
        }
        by_id = {str(row[0]): row for row in requests}
        items = []
        for rid in ids:
            row = by_id.get(rid)
            if row is None:  # expired by TTL between the two queries
                continue
            _, service, endpoint, champion_model, payload, attributes = row
            items.append(
                BatchItem(
                    source_id=check_source_id(rid, "captured request"),
                    endpoint=str(endpoint),
                    payload=str(payload),
                    service=str(service),
                    champion_model=str(champion_model),
                    attributes={str(k): str(v) for k, v in dict(attributes or {}).items()},
                    reference=_reference(champions.get(rid)),
                )
            )
        return items


def _reference(row: tuple[Any, ...] | None) -> Reference | None:
    if row is None:
        return None
    _, model, output, latency, status, error, t_in, t_out, tools, cost, trace = row
    return Reference(
        output=None if output is None else str(output),
        model=str(model),
        latency_ms=float(latency),
        status=_STATUSES.get(str(status), "error"),
        error=None if error is None else str(error),
        tokens_in=None if t_in is None else int(t_in),
        tokens_out=None if t_out is None else int(t_out),
        tool_calls=None if tools is None else int(tools),
        cost=None if cost is None else float(cost),
        tool_trace=None if trace is None else str(trace),
    )
