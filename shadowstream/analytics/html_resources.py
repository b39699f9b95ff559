"""The HTML report's per-challenger block for measures, resources and the projected bill.

Called once per challenger card by ``html.py``; returns "" when the
challenger has none of these. Charts are the inline-SVG bar charts of
``charts.py``: a measure's histogram, the measure per slice (with its
interval, the lowest first), tool calls per request champion vs challenger.
"""

from __future__ import annotations

from html import escape

from shadowstream.analytics import charts
from shadowstream.analytics.charts import ALERT, CHALLENGER, CHAMPION, FLOOR, Bar
from shadowstream.analytics.model import ChallengerReport, Report
from shadowstream.analytics.resource_model import (
    Amount,
    MeasureRow,
    MeasureSlice,
    Projection,
    ResourceRow,
    SideUsage,
)

LABELS = {"tokens_in": "tokens in", "tokens_out": "tokens out", "tool_calls": "tool calls"}
FANOUT_BINS = [0, 1, 2, 3, 4, 5, 6, 8, 11, 16, 26, 51]


def _num(value: float | None, metric: str = "") -> str:
    if value is None:
        return "&ndash;"
    if value == float("inf"):
        return "inf"
    if abs(value) < 1e-9:
        return "0"
    if abs(value) >= 10_000_000:
        return f"{value / 1e6:,.1f}M"
    if metric.startswith("cost"):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"


def _three(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.3f}"


def _is_fraction(measure: str) -> bool:
    return not measure.startswith("shared")


# -- measures -----------------------------------------------------------------------------------
def measures_table(rows: list[MeasureRow]) -> str:
    body = "".join(
        f"<tr><td class=l>{escape(m.measure)}</td><td>{m.spread.n:,}</td>"
        f"<td>{_three(m.spread.mean)} <span class=muted>[{_three(m.spread.mean_low)}, "
        f"{_three(m.spread.mean_high)}]</span></td><td>{_three(m.spread.p10)}</td>"
        f"<td>{_three(m.spread.p50)}</td><td>{_three(m.spread.p90)}</td></tr>"
        for m in rows
    )
    return (
        "<table><thead><tr><th class=l>measure</th><th>n</th><th>mean [95% CI]</th>"
        f"<th>p10</th><th>p50</th><th>p90</th></tr></thead><tbody>{body}</tbody></table>"
    )


def measure_histogram(row: MeasureRow) -> str:
    """Share of requests per tenth of the measure (for measures in [0, 1])."""
    edges = [i / 10 for i in range(10)]
    counts = row.spread.histogram.counts_by(edges)
    total = sum(counts) or 1
    bars = []
    for i, count in enumerate(counts):
        label = f"{edges[i]:.1f}-{edges[i] + 0.1:.1f}"
        tip = f"{row.measure} in {label}: {count:,} of {total:,} requests"
        bars.append(Bar(label, count / total, None, None, CHALLENGER, tip))
    bars.reverse()  # 1.0 (identical) on top
    return charts.bar_chart(
        [("", bars)], f"distribution of {row.measure}", "share of requests", label_width=90
    )


def measure_slice_chart(row: MeasureRow, slices: list[MeasureSlice]) -> str:
    bars = []
    for s in slices:
        if s.spread.mean is None:
            continue
        label = f"{s.attribute}={s.value}"
        label = label if len(label) <= 22 else label[:21] + "…"
        tip = (
            f"{s.attribute}={s.value}: mean {s.spread.mean:.3f} "
            f"[{_three(s.spread.mean_low)}, {_three(s.spread.mean_high)}], n={s.spread.n:,}; "
            f"rest {_three(s.rest_mean)}" + ("; significantly lower" if s.significant else "")
        )
        colour = ALERT if s.significant else CHALLENGER
        bars.append(Bar(label, s.spread.mean, s.spread.mean_low, s.spread.mean_high, colour, tip))
    if not bars:
        return charts.empty_chart(charts.Frame(), "slices", "no slice with enough comparisons")
    mean = row.spread.mean
    reference = (mean, FLOOR, f"overall {mean:.3f}") if mean is not None else None
    return charts.bar_chart(
        [("", bars)],
        f"{row.measure} by slice",
        f"mean {row.measure} (95% CI); red = significantly below the rest",
        reference=reference,
        label_width=170,
        fmt=lambda v: f"{v:.2f}",
    )


def measures_block(rows: list[MeasureRow], slices: list[MeasureSlice]) -> str:
    main = next((m for m in rows if m.measure.startswith("rbo")), rows[0])
    mine = [s for s in slices if s.measure == main.measure]
    figures = ""
    if _is_fraction(main.measure):
        figures += f"<figure><h3>Distribution of {escape(main.measure)}</h3>"
        figures += f"{measure_histogram(main)}</figure>"
    figures += f"<figure><h3>{escape(main.measure)} by attribute slice</h3>"
    figures += f"{measure_slice_chart(main, mine)}</figure>"
    return (
        "<h3 style='margin-top:16px'>Ranking agreement (comparator measures; 1 = same ranking)"
        f"</h3>{measures_table(rows)}<div class=grid style='margin-top:10px'>{figures}</div>"
    )


# -- resources ----------------------------------------------------------------------------------
def _quantiles(usage: SideUsage | None, metric: str) -> str:
    if usage is None:
        return "&ndash;"
    s = usage.spread
    return " / ".join(_num(v, metric) for v in (s.p50, s.p95, s.p99))


def _over(usage: SideUsage | None) -> str:
    if usage is None or usage.over_limit is None or usage.over_limit.share is None:
        return "&ndash;"
    o = usage.over_limit
    return f"{o.share:.1%} <span class=muted>[{(o.low or 0):.1%}, {(o.high or 0):.1%}]</span>"


def resources_table(rows: list[ResourceRow]) -> str:
    body = []
    for r in rows:
        delta = r.p95_change_pct
        cls = "sig" if delta is not None and delta > 10 else ""
        limit = next(
            (u.over_limit.limit for u in (r.champion, r.challenger_side) if u and u.over_limit),
            None,
        )
        over = (
            f"&gt; {_num(limit, r.metric)}: {_over(r.champion)} → {_over(r.challenger_side)}"
            if limit is not None
            else "&ndash;"
        )
        body.append(
            f"<tr><td class=l>{escape(LABELS.get(r.metric, r.metric))}</td>"
            f"<td>{_quantiles(r.champion, r.metric)}</td>"
            f"<td>{_quantiles(r.challenger_side, r.metric)}</td>"
            f"<td class='{cls}'>{'&ndash;' if delta is None else f'{delta:+.0f}%'}</td>"
            f"<td>{over}</td></tr>"
        )
    return (
        "<table><thead><tr><th class=l>per request</th><th>champion p50 / p95 / p99</th>"
        "<th>challenger p50 / p95 / p99</th><th>p95 Δ</th><th>share over limit [95% CI]</th>"
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def fanout_chart(row: ResourceRow) -> str:
    """Tool calls per request: share of requests per number of calls, both sides."""
    groups = []
    sides = (("champion", row.champion, CHAMPION), ("challenger", row.challenger_side, CHALLENGER))
    counted = {
        side: usage.spread.histogram.counts_by([float(b) for b in FANOUT_BINS])
        for side, usage, _ in sides
        if usage is not None
    }
    for i, low in enumerate(FANOUT_BINS):
        high = FANOUT_BINS[i + 1] - 1 if i + 1 < len(FANOUT_BINS) else None
        label = str(low) if high == low else (f"{low}-{high}" if high else f"{low}+")
        bars = []
        for side, usage, colour in sides:
            if usage is None:
                continue
            n = usage.spread.histogram.n or 1
            count = counted[side][i]
            tip = f"{label} tool calls, {side}: {count:,} of {n:,} requests"
            bars.append(Bar(side, count / n, None, None, colour, tip))
        if any(b.value > 0 for b in bars):
            groups.append((label, bars))
    return charts.bar_chart(
        groups,
        "tool calls per request",
        "share of requests",
        label_width=70,
        legend_items=[("champion", CHAMPION, "box"), ("challenger", CHALLENGER, "box")],
    )


def _amount(amount: Amount, metric: str, month: float) -> str:
    if amount.per_day is None:
        return "&ndash;"
    text = _num(amount.per_day * month, metric)
    if amount.low is not None and amount.high is not None:
        text += (
            f" <span class=muted>[{_num(amount.low * month, metric)}, "
            f"{_num(amount.high * month, metric)}]</span>"
        )
    return text


def projection_table(p: Projection) -> str:
    if p.requests_per_day is None:
        return f"<p class=muted>Projection: {escape(p.note or 'no live request rate')}.</p>"
    rows = "".join(
        f"<tr><td class=l>{escape(LABELS.get(m.metric, m.metric))}</td>"
        f"<td>{_amount(m.champion, m.metric, p.days_per_month)}</td>"
        f"<td>{_amount(m.challenger, m.metric, p.days_per_month)}</td>"
        f"<td>{_amount(m.difference, m.metric, p.days_per_month)}</td></tr>"
        for m in p.metrics
    )
    sampled = "" if p.sample_fraction is None else f", {p.sample_fraction:.0%} sampled"
    batch = (
        f"; cost at the batch price = {p.batch_price_factor:g} x the recorded cost"
        if p.batch_price_factor is not None
        else ""
    )
    return (
        f"<h3 style='margin-top:16px'>Projected per month if promoted "
        f"({p.days_per_month:g} days at {p.requests_per_day:,.0f} requests/day: the live "
        f"rate of this range, {escape(p.rate_source)}{sampled}{escape(batch)})</h3>"
        "<table><thead><tr><th class=l>total</th><th>champion [95% CI]</th>"
        "<th>challenger [95% CI]</th><th>difference [95% CI]</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def extras_html(report: Report, r: ChallengerReport) -> str:
    """Measures, resources and projection for one challenger card ("" if it has none)."""
    key = (r.experiment_id, r.challenger)
    measures = [m for m in report.measures if (m.experiment_id, m.challenger) == key]
    slices = [s for s in report.measure_slices if (s.experiment_id, s.challenger) == key]
    resources = [x for x in report.resources if (x.experiment_id, x.challenger) == key]
    projection = next(
        (p for p in report.projections if (p.experiment_id, p.challenger) == key), None
    )
    parts = []
    if measures:
        parts.append(measures_block(measures, slices))
    if resources:
        parts.append(
            "<h3 style='margin-top:16px'>Resources per request (same requests, champion vs "
            f"challenger)</h3>{resources_table(resources)}"
        )
        fanout = next((x for x in resources if x.metric == "tool_calls"), None)
        if fanout is not None:
            parts.append(
                "<div class=grid style='margin-top:10px'><figure><h3>Tool-call fan-out</h3>"
                f"{fanout_chart(fanout)}</figure></div>"
            )
    if projection is not None:
        parts.append(projection_table(projection))
    return "".join(parts)
