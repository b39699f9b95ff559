"""Machine-readable exports of a report: JSON (everything) and CSV (one table)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any, Literal

from shadowstream.analytics.gate import GateResult
from shadowstream.analytics.model import ChallengerReport, Report, to_jsonable

CsvSection = Literal[
    "summary", "slices", "examples", "series",
    "measures", "measure_slices", "resources", "resource_slices", "projection",
]  # fmt: skip
# sections that are a list on the Report (bins and raw moments stay in the JSON)
EXTRA_SECTIONS = {
    "measures": "measures",
    "measure_slices": "measure_slices",
    "resources": "resources",
    "resource_slices": "resource_slices",
}
_JSON_ONLY = frozenset({"histogram", "moments"})


def report_json(report: Report) -> str:
    return json.dumps(to_jsonable(report), indent=2)


def gate_json(results: list[GateResult], exit_code: int) -> str:
    data = {
        "exit_code": exit_code,
        "results": [
            {
                **to_jsonable(r),
                "verdict": r.verdict,
                "exit_code": r.exit_code,
            }
            for r in results
        ],
    }
    return json.dumps(data, indent=2)


def summary_row(row: ChallengerReport) -> dict[str, Any]:
    """One flat row per (experiment, challenger) with the headline numbers."""
    floor = row.floor
    a, b, d = row.champion, row.challenger_side, row.latency_delta
    ci = row.failure_increase_ci
    out: dict[str, Any] = {
        "experiment_id": row.experiment_id,
        "challenger": row.challenger,
        "is_control": row.is_control,
        "comparisons": row.comparisons,
        "late": row.late,
        "compared": row.divergence.n,
        "diverged": row.divergence.k,
        "divergence_rate": row.divergence.value,
        "divergence_ci_low": row.divergence.low,
        "divergence_ci_high": row.divergence.high,
        "control": floor.control if floor else None,
        "control_divergence_rate": floor.control_rate.value if floor else None,
        "above_floor": floor.difference if floor else None,
        "above_floor_ci_low": floor.low if floor else None,
        "above_floor_ci_high": floor.high if floor else None,
        "above_floor_p_value": floor.p_value if floor else None,
        "above_floor_significant": floor.significant if floor else None,
        "failure_increase": row.failure_increase,
        "failure_increase_ci_low": ci.low if ci else None,
        "failure_increase_ci_high": ci.high if ci else None,
    }
    for label, side in (("champion", a), ("challenger", b)):
        out.update(
            {
                f"{label}_p50_ms": side.latency_p50_ms,
                f"{label}_p95_ms": side.latency_p95_ms,
                f"{label}_p99_ms": side.latency_p99_ms,
                f"{label}_error_rate": side.errors.value,
                f"{label}_timeout_rate": side.timeouts.value,
                f"{label}_missing_rate": side.missing.value,
                f"{label}_invalid_format_rate": side.invalid_format.value,
                f"{label}_tokens_in": side.tokens_in,
                f"{label}_tokens_out": side.tokens_out,
                f"{label}_tool_calls": side.tool_calls,
                f"{label}_cost": side.cost,
            }
        )
    out.update({"p50_delta_pct": d.p50_pct, "p95_delta_pct": d.p95_pct, "p99_delta_pct": d.p99_pct})
    out.update(
        {
            "control_p95_ms": row.control_p95_ms,
            "p95_vs_control_pct": row.p95_vs_control_pct,
            "provisional": row.provisional,
        }
    )
    return out


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if key in _JSON_ONLY:
            continue
        if isinstance(item, dict) and key != "attributes":
            flat.update(_flatten(item, f"{name}_"))
        elif isinstance(item, list | dict):
            flat[name] = json.dumps(item)
        else:
            flat[name] = item
    return flat


def section_rows(report: Report, section: CsvSection) -> list[dict[str, Any]]:
    if section == "summary":
        return [to_jsonable(summary_row(r)) for r in report.challengers]
    items: Iterable[Any]
    if section in EXTRA_SECTIONS:
        items = getattr(report, EXTRA_SECTIONS[section])
    elif section == "projection":
        return [
            {**_flatten({k: v for k, v in head.items() if k != "metrics"}), **_flatten(metric)}
            for head in (to_jsonable(p) for p in report.projections)
            for metric in head["metrics"]
        ]
    elif section == "slices":
        items = report.slices
    elif section == "examples":
        items = report.examples
    else:
        items = report.series
    return [_flatten(to_jsonable(item)) for item in items]


def report_csv(report: Report, section: CsvSection = "summary") -> str:
    rows = section_rows(report, section)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
