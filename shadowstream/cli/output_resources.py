"""Terminal tables for comparator measures, resources per request and the projected bill."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table

from shadowstream.cli.formatting import titled_table

if TYPE_CHECKING:
    from shadowstream.analytics.model import Report
    from shadowstream.analytics.resource_model import Amount, SideUsage, Spread

TERMINAL_SLICES = 1  # lowest slices per (challenger, measure) in the terminal
METRIC_LABELS = {
    "tokens_in": "tokens in",
    "tokens_out": "tokens out",
    "tool_calls": "tool calls",
    "cost": "cost",
    "cost at batch price": "cost (batch price)",
}


def number(value: float | None, metric: str = "") -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    if abs(value) < 1e-9:
        return "0"
    if abs(value) >= 10_000_000:
        for unit, size in (("B", 1e9), ("M", 1e6)):
            if abs(value) >= size:
                return f"{value / size:,.2f}{unit}"
    if metric.startswith("cost"):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value != int(value) else f"{int(value)}"


def measure_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _mean_ci(spread: Spread) -> str:
    if spread.mean is None:
        return "-"
    text = measure_value(spread.mean)
    if spread.mean_low is not None and spread.mean_high is not None:
        text += f" [{measure_value(spread.mean_low)}, {measure_value(spread.mean_high)}]"
    return text


def measures_table(report: Report) -> Table:
    table = titled_table(
        "Comparator measures (ranked lists: 1 = same ranking)",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("measure", "left"),
            ("n", "right"),
            ("mean [95% CI]", "right"),
            ("p10", "right"),
            ("p50", "right"),
            ("p90", "right"),
        ],
        caption="rbo: rank-biased overlap (Webber, Moffat & Zobel 2010), extrapolated; "
        "overlap: shared / k; ndcg: the champion's order as the reference",
    )
    for m in report.measures:
        s = m.spread
        table.add_row(
            m.challenger,
            m.experiment_id,
            m.measure,
            f"{s.n:,}",
            _mean_ci(s),
            measure_value(s.p10),
            measure_value(s.p50),
            measure_value(s.p90),
        )
    return table


def measure_slices_table(report: Report) -> Table:
    table = titled_table(
        "Where the measures are lowest: attribute slices",
        [
            ("challenger", "left"),
            ("measure", "left"),
            ("slice", "left"),
            ("n", "right"),
            ("mean [95% CI]", "right"),
            ("p10", "right"),
            ("rest", "right"),
            ("p (Bonf.)", "right"),
            ("", "left"),
        ],
        caption="lowest mean first; ▼ = significantly below the challenger's other requests "
        "(one-sided Welch z-test, Bonferroni over the slices tested)",
    )
    shown: dict[tuple[str, str, str], int] = {}
    for s in report.measure_slices:
        key = (s.experiment_id, s.challenger, s.measure)
        shown[key] = shown.get(key, 0) + 1
        if shown[key] > TERMINAL_SLICES and not s.significant:
            continue  # the rest are in --format json / csv / html
        p = "-" if s.p_value is None else ("<0.001" if s.p_value < 0.001 else f"{s.p_value:.3f}")
        table.add_row(
            s.challenger,
            s.measure,
            f"{s.attribute}={s.value}",
            f"{s.spread.n:,}",
            _mean_ci(s.spread),
            measure_value(s.spread.p10),
            measure_value(s.rest_mean),
            p,
            "[bold red]▼ significant[/]" if s.significant else "",
        )
    return table


def _quantiles(usage: SideUsage | None, metric: str) -> str:
    if usage is None:
        return "-"
    s = usage.spread
    return " / ".join(number(v, metric) for v in (s.p50, s.p95, s.p99))


def _over(usage: SideUsage | None) -> str:
    if usage is None or usage.over_limit is None or usage.over_limit.share is None:
        return "-"
    share = usage.over_limit.share
    return f"{share * 100:.2f}%" if share < 0.01 else f"{share * 100:.1f}%"


def resources_table(report: Report) -> Table:
    has_limits = any(
        r.challenger_side is not None and r.challenger_side.over_limit is not None
        for r in report.resources
    )
    columns = [
        ("challenger", "left"),
        ("exp.", "left"),
        ("metric", "left"),
        ("n", "right"),
        ("p50 / p95 / p99 champion", "right"),
        ("p50 / p95 / p99 challenger", "right"),
        ("p95 Δ", "right"),
    ]
    if has_limits:
        columns.append(("over limit: champion → challenger", "right"))
    table = titled_table(
        "Resources per request, as distributions (same requests, champion vs challenger)",
        columns,
        caption="from log-binned rollups: quantiles within 1% (integers below ~50 exact)",
    )
    for r in report.resources:
        n = r.challenger_side.spread.n if r.challenger_side else 0
        delta = "-" if r.p95_change_pct is None else f"{r.p95_change_pct:+.0f}%"
        if r.p95_change_pct is not None and r.p95_change_pct > 10:
            delta = f"[red]{delta}[/]"
        row = [
            r.challenger,
            r.experiment_id,
            METRIC_LABELS.get(r.metric, r.metric),
            f"{n:,}",
            _quantiles(r.champion, r.metric),
            _quantiles(r.challenger_side, r.metric),
            delta,
        ]
        if has_limits:
            limit = next(
                (u.over_limit.limit for u in (r.champion, r.challenger_side) if u and u.over_limit),
                None,
            )
            row.append(
                f"> {number(limit, r.metric)}: {_over(r.champion)} → {_over(r.challenger_side)}"
                if limit is not None
                else "-"
            )
        table.add_row(*row)
    return table


def resource_slices_table(report: Report) -> Table:
    table = titled_table(
        "Resources by slice: where the challenger's p95 rose most",
        [
            ("challenger", "left"),
            ("metric", "left"),
            ("slice", "left"),
            ("n", "right"),
            ("p95 champion → challenger", "right"),
            ("Δ", "right"),
        ],
    )
    shown: set[tuple[str, str, str]] = set()
    for s in report.resource_slices:
        key = (s.experiment_id, s.challenger, s.metric)
        if key in shown or s.p95_change_pct is None or abs(s.p95_change_pct) < 5:
            continue  # the top slice per metric that moved; all of them in json / csv / html
        shown.add(key)
        a = s.champion.spread.p95 if s.champion else None
        b = s.challenger_side.spread.p95 if s.challenger_side else None
        table.add_row(
            s.challenger,
            METRIC_LABELS.get(s.metric, s.metric),
            f"{s.attribute}={s.value}",
            f"{s.challenger_side.spread.n:,}" if s.challenger_side else "-",
            f"{number(a, s.metric)} → {number(b, s.metric)}",
            "-" if s.p95_change_pct is None else f"{s.p95_change_pct:+.0f}%",
        )
    return table


def _amount(amount: Amount, metric: str, month: float) -> str:
    if amount.per_day is None:
        return "-"
    text = number(amount.per_day * month, metric)
    if amount.low is not None and amount.high is not None:
        text += f" [{number(amount.low * month, metric)}, {number(amount.high * month, metric)}]"
    return text


def projection_table(report: Report) -> Table:
    table = titled_table(
        "Projected per month if promoted, at the live request rate of this range",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("requests/day", "right"),
            ("sampled", "right"),
            ("metric", "left"),
            ("champion [95% CI]", "right"),
            ("challenger [95% CI]", "right"),
            ("difference [95% CI]", "right"),
        ],
        caption="rate corrected for the share of requests each challenger was sent (router "
        "stats, else its sample_rate); intervals from the sample; batch experiments "
        "also at the batch price",
    )
    for p in report.projections:
        rate = "-" if p.requests_per_day is None else f"{p.requests_per_day:,.0f}"
        sampled = "-" if p.sample_fraction is None else f"{p.sample_fraction:.0%} ({p.rate_source})"
        if not p.metrics or p.requests_per_day is None:
            table.add_row(
                p.challenger, p.experiment_id, rate, sampled, "-", "-", "-", p.note or "-"
            )
            continue
        for i, m in enumerate(p.metrics):
            month = p.days_per_month
            table.add_row(
                p.challenger if i == 0 else "",
                p.experiment_id if i == 0 else "",
                rate if i == 0 else "",
                sampled if i == 0 else "",
                METRIC_LABELS.get(m.metric, m.metric),
                _amount(m.champion, m.metric, month),
                _amount(m.challenger, m.metric, month),
                _amount(m.difference, m.metric, month),
            )
    return table


def extra_renderables(report: Report) -> list[RenderableType]:
    parts: list[RenderableType] = []
    if report.measures:
        parts.append(measures_table(report))
    if report.measure_slices:
        parts.append(measure_slices_table(report))
    if report.resources:
        parts.append(resources_table(report))
    if any(s.p95_change_pct and abs(s.p95_change_pct) >= 5 for s in report.resource_slices):
        parts.append(resource_slices_table(report))
    if report.projections:
        parts.append(projection_table(report))
    return parts
