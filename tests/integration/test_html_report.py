"""The HTML report renders in a real browser: charts drawn, no errors, nothing fetched.

Headless Chromium (Debian package ``chromium``; ``./dev test`` installs it) loads
the file; the page's own script counts charts with drawn marks
(``data-charts-drawn``) and records script errors and Content-Security-Policy
violations (any attempt to load something from outside the file) into
``#console-errors``; ``--dump-dom`` hands both back.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shadowstream.analytics.html import render_html
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.warehouse.client import Warehouse, connect
from tests.support import synthetic
from tests.support.chromium import CHROMIUM, headless_chromium

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def planted(chdb_url: str) -> Iterator[Warehouse]:
    warehouse = connect(chdb_url, f"t_html_{uuid.uuid4().hex[:10]}")
    migrate(warehouse)
    synthetic.insert_planted(warehouse, n=800)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def chromium(page: Path, profile: Path, *extra: str) -> str:
    return headless_chromium(page.as_uri(), profile, *extra)


def rendered(dom: str) -> tuple[int, int, str]:
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom)
    total = re.search(r'data-charts-total="(\d+)"', dom)
    errors = re.search(r'<pre id="console-errors"[^>]*>(.*?)</pre>', dom, re.S)
    assert drawn and total and errors, "the page's check script did not run"
    return int(drawn.group(1)), int(total.group(1)), html.unescape(errors.group(1))


def test_report_renders_every_chart_without_errors(planted: Warehouse, tmp_path: Path) -> None:
    report = build_report(Scope(planted, TimeRange()), ReportOptions(charts=True))
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    text = page.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    drawn, total, errors = rendered(chromium(page, tmp_path / "profile", "--dump-dom"))
    assert errors == ""
    # 6 challengers x (latency, divergence over time, failures, slices, tool-call fan-out)
    assert total == 5 * len(report.challengers) == 30
    assert drawn == total
    shot = tmp_path / "report.png"
    chromium(page, tmp_path / "profile", "--hide-scrollbars", f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few KB


def test_the_check_catches_script_errors_and_network_access(tmp_path: Path) -> None:
    """The no-errors assertion above is meaningful: a broken page is caught."""
    from shadowstream.analytics.model import Report
    from shadowstream.analytics.queries import EPOCH, FAR_FUTURE

    empty = Report(
        generated_at=EPOCH,
        database="db",
        since=EPOCH,
        until=FAR_FUTURE,
        experiment="",
        control="control",
        confidence=0.95,
        exact=False,
    )
    broken = render_html(empty).replace(
        "</main>",
        '</main><img src="https://example.invalid/pixel.png"><script>notDefined();</script>',
    )
    page = tmp_path / "broken.html"
    page.write_text(broken, encoding="utf-8")
    _, _, errors = rendered(chromium(page, tmp_path / "profile", "--dump-dom"))
    assert "notDefined" in errors
    assert "blocked by CSP" in errors and "example.invalid" in errors
