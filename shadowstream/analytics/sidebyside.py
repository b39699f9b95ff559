"""Both answers of a request, side by side, with the differences marked.

Reads what the sink stored (``requests``, ``responses`` and ``comparisons``,
each with FINAL): the input, the champion's and each challenger's output,
latency, tokens, cost, errors, the comparison and the LLM judge's verdict
and rationale. Only stored data is shown: fields redacted before they were
stored stay redacted. Raw outputs need ``sink_raw_events`` (the default);
without them only the comparison is known.

Used by ``shadow show <request_id>`` (:func:`fetch_request`) and by the HTML
report's examples (:func:`fetch_sides`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shadowstream.analytics.model import Example
from shadowstream.analytics.queries import as_utc, check_identifier
from shadowstream.analytics.textdiff import Diff, as_text, diff_outputs, parse
from shadowstream.warehouse.client import Warehouse

LIVE = "live"


@dataclass(frozen=True)
class Answer:
    side: str  # "champion" or the challenger's name
    model: str
    status: str
    output: str | None  # as stored (JSON text)
    latency_ms: float | None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        """The output as people read it (a JSON string as its text)."""
        return as_text(parse(self.output)) if self.output is not None else ""


@dataclass(frozen=True)
class SideBySide:
    experiment_id: str
    challenger: str
    request_id: str
    outcome: str
    champion: Answer | None
    answer: Answer | None  # the challenger's
    diff: Diff
    diverged: bool | None
    comparator: str
    diff_summary: str
    judge_verdict: str | None
    judge_rationale: str | None


@dataclass(frozen=True)
class RequestView:
    request_id: str
    experiment_id: str
    endpoint: str
    service: str
    request_time: dt.datetime | None
    attributes: dict[str, str]
    input: str | None  # None: the raw request was not stored
    champion: Answer | None
    sides: list[SideBySide] = field(default_factory=list)


def _answer(row: dict[str, Any], side: str) -> Answer:
    return Answer(
        side=side,
        model=str(row.get("model") or ""),
        status=str(row.get("status") or ""),
        output=row.get("output"),
        latency_ms=row.get("latency_ms"),
        tokens_in=row.get("tokens_in"),
        tokens_out=row.get("tokens_out"),
        cost=row.get("cost"),
        error=row.get("error"),
    )


def _from_comparison(c: dict[str, Any], side: str) -> Answer | None:
    """What a comparison knows of one side, when the raw response was not stored."""
    status = str(c.get(f"{side}_status") or "")
    if status == "missing":
        return None
    return Answer(
        side=side if side == "champion" else str(c["challenger"]),
        model=str(c.get(f"{side}_model") or ""),
        status=status,
        output=None,
        latency_ms=c.get(f"{side}_latency_ms"),
        tokens_in=c.get(f"{side}_tokens_in"),
        tokens_out=c.get(f"{side}_tokens_out"),
        cost=c.get(f"{side}_cost"),
        error=c.get(f"{side}_error"),
    )


class _Rows:
    """The stored rows of some requests, one query per table."""

    def __init__(self, warehouse: Warehouse, experiments: Sequence[str], ids: Sequence[str]):
        db = check_identifier(warehouse.database)
        params = {"exps": sorted(set(experiments)), "ids": sorted(set(ids))}
        where = "experiment_id IN {exps:Array(String)} AND request_id IN {ids:Array(String)}"
        self.requests = {
            (r["experiment_id"], r["request_id"]): r
            for r in warehouse.query(
                "SELECT request_id, toString(experiment_id) AS experiment_id, request_time, "
                "toString(service) AS service, toString(endpoint) AS endpoint, payload, attributes "
                f"FROM {db}.requests FINAL WHERE {where}",
                params,
            ).dicts()
        }
        self.responses: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for r in warehouse.query(
            "SELECT request_id, toString(experiment_id) AS experiment_id, toString(role) AS role, "
            "toString(challenger) AS challenger, toString(model) AS model, output, latency_ms, "
            "toString(status) AS status, error, tokens_in, tokens_out, cost "
            f"FROM {db}.responses FINAL WHERE {where}",
            params,
        ).dicts():
            side = "champion" if r["role"] == "champion" else r["challenger"]
            self.responses.setdefault((r["experiment_id"], r["request_id"]), {})[side] = r
        self.comparisons: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in warehouse.query(
            f"SELECT * FROM {db}.comparisons FINAL WHERE {where} AND is_late = 0 "
            "ORDER BY challenger",
            params,
        ).dicts():
            key = (str(r["experiment_id"]), str(r["request_id"]))
            self.comparisons.setdefault(key, []).append(r)

    def side(self, key: tuple[str, str], c: dict[str, Any]) -> SideBySide:
        stored = self.responses.get(key, {})
        name = str(c["challenger"])
        champion_row, challenger_row = stored.get("champion"), stored.get(name)
        champion = _answer(champion_row, "champion") if champion_row else None
        answer = _answer(challenger_row, name) if challenger_row else None
        champion = champion or _from_comparison(c, "champion")
        answer = answer or _from_comparison(c, "challenger")
        return SideBySide(
            experiment_id=key[0],
            challenger=name,
            request_id=key[1],
            outcome=str(c.get("outcome") or ""),
            champion=champion,
            answer=answer,
            diff=diff_outputs(
                champion.output if champion and champion.status == "ok" else None,
                answer.output if answer and answer.status == "ok" else None,
            ),
            diverged=c.get("diverged"),
            comparator=str(c.get("comparator") or ""),
            diff_summary=str(c.get("diff_summary") or ""),
            judge_verdict=c.get("judge_verdict"),
            judge_rationale=c.get("judge_rationale"),
        )


def fetch_sides(warehouse: Warehouse, examples: Sequence[Example]) -> list[SideBySide]:
    """The report's examples with both answers (in the examples' order)."""
    rows = _Rows(warehouse, [e.experiment_id for e in examples], [e.request_id for e in examples])
    out = []
    for e in examples:
        key = (e.experiment_id, e.request_id)
        c = next(
            (c for c in rows.comparisons.get(key, []) if c["challenger"] == e.challenger), None
        )
        if c is not None:
            out.append(rows.side(key, c))
    return out


def candidate_experiments(request_id: str) -> list[str]:
    """A batch run's request ids are ``<experiment>:<id>``; live ones are in ``live``."""
    found = [LIVE]
    prefix, sep, _ = request_id.partition(":")
    if sep and prefix and prefix != LIVE:
        found.append(prefix)
    return found


def fetch_request(
    warehouse: Warehouse,
    request_id: str,
    experiment: str | None = None,
    challengers: Sequence[str] = (),
) -> list[RequestView]:
    """Everything stored about one request id (one view per experiment it is in)."""
    experiments = [experiment] if experiment else candidate_experiments(request_id)
    rows = _Rows(warehouse, experiments, [request_id])
    keys = sorted(set(rows.requests) | set(rows.responses) | set(rows.comparisons))
    views = []
    for key in keys:
        request = rows.requests.get(key, {})
        comparisons = [
            c
            for c in rows.comparisons.get(key, [])
            if not challengers or c["challenger"] in challengers
        ]
        sides = [rows.side(key, c) for c in comparisons]
        stored = rows.responses.get(key, {})
        champion = _answer(stored["champion"], "champion") if "champion" in stored else None
        if champion is None and sides:
            champion = sides[0].champion
        first = comparisons[0] if comparisons else {}
        views.append(
            RequestView(
                request_id=key[1],
                experiment_id=key[0],
                endpoint=str(request.get("endpoint") or first.get("endpoint") or ""),
                service=str(request.get("service") or first.get("service") or ""),
                request_time=as_utc(request.get("request_time") or first.get("request_time")),
                attributes={
                    str(k): str(v)
                    for k, v in (request.get("attributes") or first.get("attributes") or {}).items()
                },
                input=request.get("payload"),
                champion=champion,
                sides=sides,
            )
        )
    return views
