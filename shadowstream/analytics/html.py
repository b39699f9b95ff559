"""The HTML report: one self-contained file (inline CSS, inline SVG, a few lines of JS).

Nothing is fetched when it is opened: a Content-Security-Policy forbids every
network source, and a small script records any script error or policy
violation into ``#console-errors`` and counts the charts that rendered
(``<body data-charts-drawn>``) - the browser test reads both.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from shadowstream.analytics import charts
from shadowstream.analytics.charts import ALERT, CHALLENGER, CHAMPION, FLOOR, Bar, TimePoint
from shadowstream.analytics.html_assets import CHECK_AND_TOOLTIPS, CSP, ERROR_CAPTURE, NOTES, STYLE
from shadowstream.analytics.html_resources import extras_html
from shadowstream.analytics.html_sides import OPEN_TARGET, llm_section, side_by_side
from shadowstream.analytics.html_sides import STYLE as SIDES_STYLE
from shadowstream.analytics.model import (
    ChallengerReport,
    Example,
    Rate,
    Report,
    SeriesPoint,
    SliceRow,
)


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "&ndash;"
    digits = 2 if abs(value) < 0.01 else 1
    return f"{value * 100:+.{digits}f}pp" if signed else f"{value * 100:.{digits}f}%"


def _ci(rate: Rate) -> str:
    if rate.value is None:
        return "&ndash;"
    return f"{_pct(rate.value)} <span class=muted>[{_pct(rate.low)}, {_pct(rate.high)}]</span>"


def _ms(value: float | None) -> str:
    if value is None:
        return "&ndash;"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _name(row: ChallengerReport) -> str:
    return escape(row.challenger) + (" <span class=muted>(A/A)</span>" if row.is_control else "")


# -- pieces --------------------------------------------------------------------------------------
def overview(report: Report, alerts: dict[tuple[str, str], list[SliceRow]]) -> str:
    rows = []
    for r in report.challengers:
        floor = r.floor
        if r.is_control:
            above = "<span class=muted>is the floor</span>"
        elif floor is None or floor.difference is None:
            above = "<span class=muted>no control</span>"
        else:
            cls = "sig" if floor.significant and floor.difference > 0 else ""
            mark = " ▲" if floor.significant and floor.difference > 0 else ""
            above = (
                f"<span class='{cls}'>{_pct(floor.difference, True)}{mark}</span> "
                f"<span class=muted>[{_pct(floor.low, True)}, {_pct(floor.high, True)}]</span>"
            )
        d95 = r.latency_delta.p95_pct
        d95_text = "&ndash;" if d95 is None else f"{d95:+.0f}%"
        d95_cls = "sig" if d95 is not None and d95 > 10 else ""
        fail = r.failure_increase
        slices = alerts.get((r.experiment_id, r.challenger), [])
        slice_text = ", ".join(escape(f"{s.attribute}={s.value}") for s in slices[:3]) or "&ndash;"
        rows.append(
            f"<tr><td class=l>{_name(r)}</td><td class=l>{escape(r.experiment_id)}</td>"
            f"<td>{r.comparisons:,}</td><td>{_ci(r.divergence)}</td><td>{above}</td>"
            f"<td>{_ms(r.champion.latency_p95_ms)} → {_ms(r.challenger_side.latency_p95_ms)} "
            f"<span class='{d95_cls}'>({d95_text})</span></td>"
            f"<td>{_pct(fail, True) if fail is not None else '&ndash;'}</td>"
            f"<td>{_pct(r.challenger_side.invalid_format.value)}</td>"
            f"<td class='l {'sig' if slices else ''}'>{slice_text}</td></tr>"
        )
    return (
        "<section class=card><div class=card-head><h2>Overview</h2></div><table><thead><tr>"
        "<th class=l>challenger</th><th class=l>experiment</th><th>requests</th>"
        "<th>divergence [95% CI]</th><th>above noise floor [95% CI]</th>"
        "<th>p95 ms champion → challenger</th><th>failure rate Δ</th><th>invalid format</th>"
        "<th class=l>slices significantly worse</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _chips(r: ChallengerReport, alerts: list[SliceRow]) -> str:
    chips = [f"<span class=chip>{r.comparisons:,} requests</span>"]
    chips.append(f"<span class=chip>divergence {_pct(r.divergence.value)}</span>")
    if r.floor is not None and r.floor.difference is not None:
        if r.floor.significant and r.floor.difference > 0:
            chips.append(
                f"<span class='chip bad'>{_pct(r.floor.difference, True)} above the noise "
                "floor (significant)</span>"
            )
        else:
            chips.append("<span class='chip good'>not significantly above the noise floor</span>")
    d95 = r.latency_delta.p95_pct
    if d95 is not None:
        cls = "bad" if d95 > 10 else ("good" if d95 < -10 else "")
        chips.append(f"<span class='chip {cls}'>p95 {d95:+.0f}%</span>")
    for s in alerts[:3]:
        chips.append(
            f"<span class='chip bad'>{escape(s.attribute)}={escape(s.value)}: "
            f"{_pct(s.divergence.value)} vs {_pct(s.rest_rate)} elsewhere</span>"
        )
    if r.late:
        chips.append(f"<span class='chip note'>{r.late:,} late</span>")
    return "<div class=chips>" + "".join(chips) + "</div>"


def _points(points: list[SeriesPoint]) -> list[TimePoint]:
    out = []
    for p in points:
        d = p.divergence
        if d.value is None or d.low is None or d.high is None:
            continue
        out.append(TimePoint(p.bucket, d.value, d.low, d.high, d.n))
    return out


def failure_chart(r: ChallengerReport) -> str:
    def bars(label: str, a: Rate, b: Rate) -> tuple[str, list[Bar]]:
        out = []
        for side, rate, colour in (("champion", a, CHAMPION), ("challenger", b, CHALLENGER)):
            if rate.value is None:
                continue
            tip = (
                f"{label}, {side}: {rate.k:,}/{rate.n:,} = {_pct(rate.value)} "
                f"[{_pct(rate.low)}, {_pct(rate.high)}]"
            )
            out.append(Bar(side, rate.value, rate.low, rate.high, colour, tip))
        return label, out

    a, b = r.champion, r.challenger_side
    groups = [
        bars("errors", a.errors, b.errors),
        bars("timeouts", a.timeouts, b.timeouts),
        bars("missing", a.missing, b.missing),
        bars("invalid format", a.invalid_format, b.invalid_format),
    ]
    return charts.bar_chart(
        groups,
        f"failure rates of {r.challenger}",
        "share (95% Wilson CI)",
        label_width=110,
        legend_items=[("champion", CHAMPION, "box"), ("challenger", CHALLENGER, "box")],
    )


def slice_chart(r: ChallengerReport, slices: list[SliceRow]) -> str:
    bars = []
    for s in slices:
        d = s.divergence
        if d.value is None:
            continue
        label = f"{s.attribute}={s.value}"
        label = label if len(label) <= 22 else label[:21] + "…"
        tip = (
            f"{s.attribute}={s.value}: {d.k:,}/{d.n:,} diverged = {_pct(d.value)} "
            f"[{_pct(d.low)}, {_pct(d.high)}]; rest {_pct(s.rest_rate)}"
            + ("; significant" if s.significant else "")
        )
        colour = ALERT if s.significant else CHALLENGER
        bars.append(Bar(label, d.value, d.low, d.high, colour, tip))
    if not bars:
        return charts.empty_chart(charts.Frame(), "slices", "no slice with enough comparisons")
    reference = None
    if r.divergence.value is not None:
        reference = (r.divergence.value, FLOOR, f"overall {_pct(r.divergence.value)}")
    return charts.bar_chart(
        [("", bars)],
        f"divergence by slice for {r.challenger}",
        "divergence rate (95% Wilson CI); red = significantly above the rest",
        reference=reference,
        label_width=170,
    )


def examples_table(examples: list[Example], report: Report | None = None) -> str:
    sides = {
        (s.experiment_id, s.challenger, s.request_id): s for s in (report.sides if report else [])
    }
    if not examples:
        return "<p class=muted>No divergent or failed comparisons in range.</p>"
    rows = []
    for e in examples:
        when = f"{e.request_time:%Y-%m-%d %H:%M:%S}" if e.request_time else "&ndash;"
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()))
        detail = e.diff_summary if e.kind == "diverged" else (e.challenger_error or e.diff_summary)
        trace = ""
        if e.trace_url:
            trace = f"<br><a href='{escape(e.trace_url)}'>trace {escape(e.trace_id[:8])}</a>"
        elif e.trace_id:
            trace = f"<br><span class=muted>trace {escape(e.trace_id)}</span>"
        rows.append(
            f"<tr><td class=l>{when}</td><td class='l mono'>{escape(e.request_id)}{trace}</td>"
            f"<td class=l>{escape(e.kind)}</td><td class=l>{escape(e.endpoint)}</td>"
            f"<td class=l>{escape(attrs)}</td><td class=l>{escape(detail or '')}</td></tr>"
        )
        side = sides.get((e.experiment_id, e.challenger, e.request_id))
        if side is not None:
            rows.append(side_by_side(side, 6))
    return (
        "<table><thead><tr><th class=l>time (UTC)</th><th class=l>request id</th>"
        "<th class=l>kind</th><th class=l>endpoint</th><th class=l>attributes</th>"
        "<th class=l>diff / error</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def challenger_card(
    report: Report,
    r: ChallengerReport,
    slices: list[SliceRow],
    series: dict[tuple[str, str], list[SeriesPoint]],
    examples: list[Example],
) -> str:
    key = (r.experiment_id, r.challenger)
    curve = next((c for c in report.latency if (c.experiment_id, c.challenger) == key), None)
    latency = (
        charts.latency_chart(
            curve.levels, curve.champion_ms, curve.challenger_ms, f"latency of {r.challenger}"
        )
        if curve
        else charts.empty_chart(charts.Frame(), "latency", "no latency data")
    )
    floor_points: list[TimePoint] = []
    if not r.is_control:
        # its own control (the one it is paired with; several endpoint groups, several)
        floor_points = _points(series.get((r.experiment_id, r.control or report.control), []))
    divergence = charts.divergence_chart(
        _points(series.get(key, [])),
        floor_points,
        report.bucket_seconds,
        f"divergence of {r.challenger} over time",
    )
    alerts = [s for s in slices if s.significant]
    return (
        f"<section class=card id='c-{escape(r.experiment_id)}-{escape(r.challenger)}'>"
        f"<div class=card-head><h2>{_name(r)} <span class=muted>· {escape(r.experiment_id)}"
        f"</span></h2>{_chips(r, alerts)}</div><div class=grid>"
        f"<figure><h3>Latency distribution, successful responses</h3>{latency}</figure>"
        f"<figure><h3>Divergence rate over time ({_bucket(report.bucket_seconds)} buckets)</h3>"
        f"{divergence}</figure>"
        f"<figure><h3>Errors, timeouts, missing answers, invalid format</h3>"
        f"{failure_chart(r)}</figure>"
        f"<figure><h3>Top attribute slices by divergence</h3>{slice_chart(r, slices)}</figure>"
        f"</div><h3 style='margin-top:16px'>Most recent divergent or failed comparisons</h3>"
        f"{examples_table(examples, report)}{extras_html(report, r)}</section>"
    )


def _bucket(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}-second"
    if seconds < 3600:
        return f"{seconds // 60}-minute"
    if seconds < 86400:
        return f"{seconds // 3600}-hour"
    return f"{seconds // 86400}-day"


def render_html(report: Report) -> str:
    slices_by: dict[tuple[str, str], list[SliceRow]] = defaultdict(list)
    for s in report.slices:
        slices_by[(s.experiment_id, s.challenger)].append(s)
    series_by: dict[tuple[str, str], list[SeriesPoint]] = defaultdict(list)
    for p in report.series:
        series_by[(p.experiment_id, p.challenger)].append(p)
    examples_by: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for e in report.examples:
        examples_by[(e.experiment_id, e.challenger)].append(e)
    alerts = {k: [s for s in v if s.significant] for k, v in slices_by.items()}

    since = "the beginning" if report.since.year <= 1970 else f"{report.since:%Y-%m-%d %H:%M}"
    until = "now" if report.until.year >= 2299 else f"{report.until:%Y-%m-%d %H:%M}"
    source = "comparisons FINAL (exact)" if report.exact else "rollups"
    meta = (
        f"{escape(since)} → {escape(until)} UTC · experiment {escape(report.experiment or 'all')}"
        f" · control {escape(report.control)} · database {escape(report.database)} · from "
        f"{source} · generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    # the control first is not useful: challengers first, the control last
    ordered = sorted(
        report.challengers, key=lambda r: (r.experiment_id, r.is_control, r.challenger)
    )
    cards = "".join(
        challenger_card(
            report,
            r,
            slices_by[(r.experiment_id, r.challenger)],
            series_by,
            examples_by[(r.experiment_id, r.challenger)],
        )
        for r in ordered
    )
    body = (
        overview(report, alerts) + llm_section(report) + cards + NOTES
        if report.challengers
        else "<section class=card><p>No comparisons in that range yet.</p></section>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shadowstream report</title>
<script>{ERROR_CAPTURE}</script>
<style>{STYLE}{SIDES_STYLE}</style></head>
<body>
<pre id="console-errors" hidden></pre>
<div id="tip"></div>
<header><h1>Shadowstream report</h1><div class="meta">{meta}</div></header>
<main>{body}</main>
<script>{CHECK_AND_TOOLTIPS}{OPEN_TARGET}</script>
</body></html>
"""
