"""Both answers side by side: ``shadow show`` and the HTML report's examples (headless Chromium).

Requests, responses and comparisons are inserted the way the sink inserts
them (Avro bodies through the landing tables and their views), then read
back by ``shadow show`` and by the report; the page is opened in headless
Chromium at an example's anchor, and a screenshot must show the diff
highlight colours - and must not without the anchor (the example is folded).
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from shadowstream.analytics.html import render_html
from shadowstream.analytics.html_sides import anchor
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.cli.main import cli
from shadowstream.schemas import COMPARISON, REQUEST, RESPONSE
from shadowstream.sinks.clickhouse.migrations import migrate
from shadowstream.warehouse.client import Warehouse, connect
from tests.support.chromium import CHROMIUM, headless_chromium

DELETED, INSERTED = (254, 202, 202), (187, 247, 208)  # del.d / ins.i backgrounds

CASES = {  # request -> input, champion output, challenger output, challenger status/error
    "r-text": (
        "Where is my parcel?",
        "Your parcel is in Berlin and arrives on Monday.",
        "Your parcel is in Hamburg and arrives on Monday afternoon.",
        None,
    ),
    "r-json": (
        {"ticket": "refund please"},
        {"label": "refund", "priority": 2, "tags": ["billing"]},
        {"label": "billing", "priority": 2, "tags": ["billing", "urgent"]},
        None,
    ),
    "r-err": ("Cancel my order", "Order cancelled.", None, "HTTP 500: upstream exploded"),
}


def _insert(wh: Warehouse) -> None:
    now = time.time_ns() // 1000 - 60_000_000
    requests, responses, comparisons = [], [], []
    for i, (rid, (payload, champion, challenger, error)) in enumerate(CASES.items()):
        ts = now + i * 1000
        requests.append(
            REQUEST.encode(
                {
                    "request_id": rid,
                    "timestamp_us": ts,
                    "service": "support",
                    "endpoint": "/v1/help",
                    "champion_model": "champ-1",
                    "payload": json.dumps(payload),
                    "attributes": {"language": "en"},
                    "experiment_id": "live",
                }
            )
        )
        for role, name, output, status in (
            ("champion", "", champion, "ok"),
            ("challenger", "fast", challenger, "error" if error else "ok"),
        ):
            responses.append(
                RESPONSE.encode(
                    {
                        "request_id": rid,
                        "timestamp_us": ts + 5,
                        "role": role,
                        "challenger": name,
                        "model": "champ-1" if role == "champion" else "fast-2",
                        "output": None if output is None else json.dumps(output),
                        "latency_ms": 120.0,
                        "status": status,
                        "error": error if role == "challenger" else None,
                        "usage": {
                            "tokens_in": 12,
                            "tokens_out": 9,
                            "tool_calls": None,
                            "cost": 0.0021,
                        },
                        "tool_trace": None,
                        "experiment_id": "live",
                    }
                )
            )
        comparisons.append(
            COMPARISON.encode(
                {
                    "request_id": rid,
                    "challenger": "fast",
                    "experiment_id": "live",
                    "outcome": "both_answered",
                    "service": "support",
                    "endpoint": "/v1/help",
                    "champion_model": "champ-1",
                    "challenger_model": "fast-2",
                    "request_ts_us": ts,
                    "compared_at_us": ts + 10,
                    "champion_status": "ok",
                    "challenger_status": "error" if error else "ok",
                    "champion_latency_ms": 120.0,
                    "challenger_latency_ms": 120.0,
                    "diverged": None if error else True,
                    "divergence_score": 0.4,
                    "comparator": "cascade:judge" if rid == "r-text" else "json",
                    "diff_summary": "text differs" if rid == "r-text" else "$.label, $.tags[1]",
                    "challenger_error": error,
                    "judge_verdict": "worse" if rid == "r-text" else None,
                    "judge_rationale": "The champion names the right city."
                    if rid == "r-text"
                    else None,
                }
            )
        )
    # the sink frames bodies without their single-object header (10 bytes)
    wh.insert_avro("requests_in", REQUEST.schema, [b[10:] for b in requests])
    wh.insert_avro("responses_in", RESPONSE.schema, [b[10:] for b in responses])
    wh.insert_avro("comparisons_in", COMPARISON.schema, [b[10:] for b in comparisons])


@pytest.fixture(scope="module")
def stored(chdb_url: str) -> Iterator[Warehouse]:
    warehouse = connect(chdb_url, f"t_sides_{uuid.uuid4().hex[:10]}")
    migrate(warehouse)
    _insert(warehouse)
    yield warehouse
    warehouse.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def show(wh: Warehouse, *args: str) -> Any:
    env = {"SHADOW_CLICKHOUSE_URL": wh.url, "SHADOW_CLICKHOUSE_DATABASE": wh.database}
    return CliRunner().invoke(cli, ["show", *args], env=env)


def test_shadow_show_puts_both_answers_side_by_side(stored: Warehouse) -> None:
    text = show(stored, "r-text")
    assert text.exit_code == 0, text.output
    out = text.output
    # word-level: only the changed words are marked (no colour here, so markers)
    assert "[-Berlin-]" in out and "{+Hamburg+}" in out and "{+ afternoon+}" in out
    assert "[-Monday-]" not in out
    assert "judge: worse - The champion names the right city." in out
    assert "120 ms" in out and "tokens 12 → 9" in out and "Where is my parcel?" in out
    per_path = show(stored, "r-json", "--format", "json")
    assert per_path.exit_code == 0, per_path.output
    (view,) = json.loads(per_path.output)
    diff = view["sides"][0]["diff"]
    assert diff["kind"] == "json"
    assert [(p["path"], p["change"]) for p in diff["paths"]] == [
        ("$.label", "changed"),
        ("$.tags[1]", "added"),
    ]
    error = show(stored, "r-err")
    assert "HTTP 500: upstream exploded" in error.output and "error" in error.output
    missing = show(stored, "nope")
    assert (
        missing.exit_code == 3 and "no request 'nope' stored" in missing.output
    )  # a name that matches nothing: usage (3)


def _chromium(url: str, profile: Path, *extra: str) -> str:
    return headless_chromium(url, profile, *extra, window="1400,4000", timeout=90)


def _pixels(png: Path, colour: tuple[int, int, int]) -> int:
    colours = Image.open(png).convert("RGB").getcolors(1 << 24) or []
    return sum(
        n
        for n, pixel in colours
        if all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True))
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_examples_expand_to_the_side_by_side_view(stored: Warehouse, tmp_path: Path) -> None:
    report = build_report(Scope(stored, TimeRange()), ReportOptions(charts=True, sides=True))
    assert {s.request_id for s in report.sides} == set(CASES)
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    text = page.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    side = next(s for s in report.sides if s.request_id == "r-text")
    # a window taller than the page: headless screenshots of a scrolled page are unreliable
    url = f"{page.as_uri()}#{anchor(side)}"
    dom = _chromium(url, tmp_path / "profile", "--dump-dom")
    errors = re.search(r'<pre id="console-errors"[^>]*>(.*?)</pre>', dom, re.S)
    assert errors is not None and html.unescape(errors.group(1)) == ""
    marks = re.search(r'data-diff-marks="(\d+)"', dom)
    assert marks is not None and int(marks.group(1)) >= 2  # Berlin/Hamburg, afternoon
    opened = tmp_path / "opened.png"
    _chromium(url, tmp_path / "profile", "--hide-scrollbars", f"--screenshot={opened}")
    assert _pixels(opened, DELETED) > 150 and _pixels(opened, INSERTED) > 150
    # folded (no anchor): the highlights are not on screen, so the check above means something
    folded = tmp_path / "folded.png"
    _chromium(page.as_uri(), tmp_path / "profile", "--hide-scrollbars", f"--screenshot={folded}")
    assert _pixels(folded, DELETED) == 0 and _pixels(folded, INSERTED) == 0
