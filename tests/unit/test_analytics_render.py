"""Rendering a report (terminal, JSON, CSV, HTML) from hand-made data, no ClickHouse."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

from rich.console import Console

from shadowstream.analytics.export import gate_json, report_csv, report_json
from shadowstream.analytics.gate import evaluate
from shadowstream.analytics.html import render_html
from shadowstream.analytics.model import (
    Counts,
    Example,
    LatencyCurve,
    Rate,
    Report,
    SeriesPoint,
    SliceRow,
)
from shadowstream.analytics.queries import EPOCH, FAR_FUTURE
from shadowstream.analytics.report import LATENCY_LEVELS, ReportOptions, challenger_report
from shadowstream.cli.output import gate_table, gate_verdict, report_renderable
from shadowstream.core.config import GateSpec
from tests.unit.test_analytics_gate import FAST

HOSTILE = '<script>alert("x")</script>'
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def make_counts(name: str, diverged: int, n: int = 1000) -> Counts:
    return Counts(
        experiment_id="live",
        challenger=name,
        comparisons=n,
        compared=n,
        diverged=diverged,
        champion_ok=n,
        challenger_ok=n - 20,
        challenger_errors=20,
        paired=n,
        paired_challenger_only_failed=20,
        challenger_format_checked=n - 20,
        challenger_format_invalid=5,
        champion_tokens_in_sum=100.0 * n,
        champion_tokens_in_n=n,
        champion_latency_q=(50.0, 90.0, 120.0),
        challenger_latency_q=(55.0, float("nan"), None),
        first_minute=NOW - dt.timedelta(hours=2),
        last_minute=NOW,
    )


def make_report() -> Report:
    options = ReportOptions()
    control = make_counts("control", 10)
    report = Report(
        generated_at=NOW,
        database="db",
        since=EPOCH,
        until=FAR_FUTURE,
        experiment="",
        control="control",
        confidence=0.95,
        exact=False,
        bucket_seconds=600,
    )
    report.challengers = [
        challenger_report(control, control, options),
        challenger_report(make_counts("fast", 80), control, options),
    ]
    report.slices = [
        SliceRow(
            "live",
            "fast",
            "language",
            HOSTILE,
            200,
            Rate.of(50, 200),
            0.04,
            6.2,
            1e-9,
            12,
            True,
            0.01,
            0.0,
        ),
        SliceRow(
            "live",
            "fast",
            "tier",
            "pro",
            400,
            Rate.of(30, 400),
            0.07,
            1.1,
            1.0,
            12,
            False,
            None,
            None,
        ),
    ]
    report.examples = [
        Example(
            "live",
            "fast",
            NOW,
            "req-1",
            "diverged",
            "/v1",
            "ok",
            1.0,
            HOSTILE,
            ["$.a"],
            None,
            {"language": HOSTILE},
        ),
    ]
    report.series = [
        SeriesPoint(
            "live", name, NOW - dt.timedelta(minutes=10 * i), 100, Rate.of(k, 100), 0.0, 0.0
        )
        for name, k in (("fast", 8), ("control", 1))
        for i in range(6)
    ]
    levels = list(LATENCY_LEVELS)
    report.latency = [
        LatencyCurve(
            "live", name, levels, [40 + 60 * q for q in levels], [45 + 70 * q for q in levels]
        )
        for name in ("fast", "control")
    ]
    return report


def test_json_has_everything_and_no_nan() -> None:
    text = report_json(make_report())
    assert "NaN" not in text
    data = json.loads(text)
    fast = data["challengers"][1]
    assert fast["challenger"] == "fast" and fast["floor"]["significant"] is True
    assert fast["divergence"]["value"] == 0.08
    assert fast["challenger_side"]["latency_p95_ms"] is None  # NaN from an empty sketch
    assert data["slices"][0]["value"] == HOSTILE


def test_csv_sections() -> None:
    report = make_report()
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [r["challenger"] for r in rows] == ["control", "fast"]
    assert rows[1]["above_floor_significant"] == "True"
    slices = list(csv.DictReader(io.StringIO(report_csv(report, "slices"))))
    assert slices[0]["divergence_k"] == "50" and slices[0]["attribute"] == "language"
    assert report_csv(Report(NOW, "db", EPOCH, FAR_FUTURE, "", "c", 0.95, False)) == ""


def test_terminal_tables() -> None:
    console = Console(record=True, width=220)
    console.print(report_renderable(make_report()))
    text = console.export_text()
    assert "control (A/A)" in text and "(is the floor)" in text
    assert "yes ▲" in text and "▲ significant" in text
    assert "50.0 → 55.0 (+10%)" in text
    assert "req-1" in text


def test_gate_rendering() -> None:
    result = evaluate(FAST, make_counts("fast", 30), None, GateSpec(), "control")  # type: ignore[arg-type]
    console = Console(record=True, width=200)
    console.print(gate_table(result))
    console.print(gate_verdict(result))
    text = console.export_text()
    assert "agreement" in text and "FAIL" in text and "exit 1" in text
    # the one-line verdict names each failed criterion with its numbers
    verdict = Console(record=True, width=400)
    verdict.print(gate_verdict(result))
    line = verdict.export_text()
    assert result.failed and "failed:" in line
    for criterion in result.failed:
        assert criterion.name in line and (criterion.note in line)
    data = json.loads(gate_json([result], 1))
    assert data["results"][0]["verdict"] == "fail"


def test_html_is_self_contained_and_escapes_data() -> None:
    page = render_html(make_report())
    assert HOSTILE not in page  # production data is escaped, never markup
    assert "&lt;script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    # 2 challengers x 4 charts, each with its marks group
    assert page.count('<svg class="chart"') == 8
    assert page.count('<g class="marks">') == 8
    assert "language=" in page and "req-1" in page


def test_html_for_an_empty_report() -> None:
    page = render_html(Report(NOW, "db", EPOCH, FAR_FUTURE, "", "control", 0.95, False))
    assert "No comparisons in that range yet" in page
