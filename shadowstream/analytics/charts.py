"""Inline SVG charts, generated in Python: no JavaScript library, nothing to download.

Each chart is one ``<svg class="chart">`` with its marks in ``<g class="marks">``
(the HTML report's self-check counts drawn marks there). Colours:
champion slate, challenger blue, control/noise floor amber, significant red.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from shadowstream.analytics.svg import (
    ALERT,
    CHALLENGER,
    CHAMPION,
    FLOOR,
    GRID,
    INK,
    Frame,
    Linear,
    Log,
    coord,
    empty_chart,
    fmt_ms,
    fmt_pct,
    legend,
    log_ticks,
    nice_ticks,
    open_svg,
    text,
    x_axis,
    y_axis,
)

# the building blocks, importable from here as before
__all__ = [
    "ALERT",
    "CHALLENGER",
    "CHAMPION",
    "FLOOR",
    "Bar",
    "Frame",
    "TimePoint",
    "bar_chart",
    "divergence_chart",
    "empty_chart",
    "latency_chart",
]


# -- latency distribution ------------------------------------------------------------------------
def _cdf(levels: Sequence[float], values: Sequence[float | None]) -> list[tuple[float, float]]:
    points = [(v, q) for q, v in zip(levels, values, strict=False) if v is not None and v > 0]
    points.sort()
    return points


def _cdf_at(points: list[tuple[float, float]], x: float) -> float:
    if not points or x <= points[0][0]:
        return points[0][1] if points and x >= points[0][0] else 0.0
    if x >= points[-1][0]:
        return points[-1][1]
    lo, hi = 0, len(points) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid][0] <= x:
            lo = mid
        else:
            hi = mid
    (xa, qa), (xb, qb) = points[lo], points[hi]
    return qa if xb == xa else qa + (qb - qa) * (x - xa) / (xb - xa)


def _density(points: list[tuple[float, float]], edges: list[float]) -> list[float]:
    """Probability mass per bin (log-spaced edges), from the quantile function."""
    cdf = [_cdf_at(points, e) for e in edges]
    return [max(0.0, b - a) for a, b in itertools.pairwise(cdf)]


def latency_chart(
    levels: Sequence[float],
    champion: Sequence[float | None],
    challenger: Sequence[float | None],
    title: str,
    frame: Frame | None = None,
) -> str:
    """Champion vs challenger latency distributions (log x axis), p50/p95 marked."""
    frame = frame or Frame()
    a, b = _cdf(levels, champion), _cdf(levels, challenger)
    if len(a) < 3 and len(b) < 3:
        return empty_chart(frame, title, "no successful responses with latency")
    lo = min(p[0] for p in a + b)
    hi = max(p[0] for p in a + b)
    lo, hi = lo / 1.15, hi * 1.15
    bins = 36
    edges = [lo * (hi / lo) ** (i / bins) for i in range(bins + 1)]
    x = Log(lo, hi, frame.x0, frame.x1)
    dens = [_density(a, edges) if len(a) >= 3 else [], _density(b, edges) if len(b) >= 3 else []]
    top = max((max(d) for d in dens if d), default=1.0) * 1.12 or 1.0
    y = Linear(0, top, frame.y0, frame.y1)
    parts = [open_svg(frame, title)]
    parts.append(y_axis(frame, y, nice_ticks(0, top, 4), fmt_pct, "share of responses"))
    parts.append(x_axis(frame, x, log_ticks(lo, hi), fmt_ms, "latency (ms, log scale)"))
    parts.append('<g class="marks">')
    for dist, colour, name, pts in (
        (dens[0], CHAMPION, "champion", a),
        (dens[1], CHALLENGER, "challenger", b),
    ):
        if not dist:
            continue
        mids = [math.sqrt(edges[i] * edges[i + 1]) for i in range(bins)]
        path = " ".join(f"{coord(x(m))},{coord(y(v))}" for m, v in zip(mids, dist, strict=False))
        area = (
            f"{coord(x(mids[0]))},{coord(frame.y0)} {path} {coord(x(mids[-1]))},{coord(frame.y0)}"
        )
        parts.append(f'<polygon points="{area}" fill="{colour}" opacity="0.18"/>')
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{name}</title></polyline>"
        )
        for q, dash in ((0.5, "2 3"), (0.95, "6 3")):
            value = _quantile(pts, q)
            if value is None:
                continue
            xv = x(value)
            parts.append(
                f'<line x1="{coord(xv)}" x2="{coord(xv)}" y1="{coord(frame.y0)}" y2="{coord(frame.y1 + 8)}" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}" data-tip="'
                f'{name} p{int(q * 100)}: {value:.1f} ms"><title>{name} p{int(q * 100)} '
                f"{value:.1f} ms</title></line>"
            )
    parts.append("</g>")
    parts.append(
        legend(
            frame,
            [
                ("champion", CHAMPION, "solid"),
                ("challenger", CHALLENGER, "solid"),
                ("p50", INK, "dotted"),
                ("p95", INK, "dashed"),
            ],
        )
    )
    parts.append("</svg>")
    return "".join(parts)


def _quantile(points: list[tuple[float, float]], q: float) -> float | None:
    for value, level in points:
        if abs(level - q) < 1e-9:
            return value
    return None


# -- divergence over time -------------------------------------------------------------------------
@dataclass(frozen=True)
class TimePoint:
    at: dt.datetime
    rate: float
    low: float
    high: float
    n: int


def _time_ticks(t0: float, t1: float) -> tuple[list[float], str]:
    span = max(t1 - t0, 1)
    for step in (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
        if span / step <= 6:
            break
    first = math.ceil(t0 / step) * step
    ticks = [float(v) for v in range(int(first), int(t1) + 1, step)]
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%m-%d")
    if span > 86400 and step < 86400:
        fmt = "%m-%d %H:%M"
    return ticks, fmt


def divergence_chart(
    points: Sequence[TimePoint],
    floor: Sequence[TimePoint],
    bucket_seconds: int,
    title: str,
    frame: Frame | None = None,
) -> str:
    """Divergence rate per time bucket with its Wilson band; the control's rate dashed."""
    frame = frame or Frame()
    if not points:
        return empty_chart(frame, title, "no compared responses in range")
    half = bucket_seconds / 2
    times = [p.at.timestamp() + half for p in [*points, *floor]]
    t0, t1 = min(times) - half, max(times) + half
    top = max([p.high for p in points] + [p.high for p in floor] + [0.01]) * 1.1
    x = Linear(t0, t1, frame.x0, frame.x1)
    y = Linear(0, top, frame.y0, frame.y1)
    ticks, fmt = _time_ticks(t0, t1)
    parts = [open_svg(frame, title)]
    parts.append(y_axis(frame, y, nice_ticks(0, top, 4), fmt_pct, "divergence rate"))
    parts.append(
        x_axis(
            frame,
            x,
            ticks,
            lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime(fmt),
            "time (UTC)",
        )
    )
    parts.append('<g class="marks">')
    for series, colour, dashed in ((floor, FLOOR, True), (points, CHALLENGER, False)):
        if not series:
            continue
        xs = [x(p.at.timestamp() + half) for p in series]
        if not dashed:
            upper = " ".join(
                f"{coord(xv)},{coord(y(p.high))}" for xv, p in zip(xs, series, strict=False)
            )
            lower = " ".join(
                f"{coord(xv)},{coord(y(p.low))}"
                for xv, p in reversed(list(zip(xs, series, strict=False)))
            )
            parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.15"/>')
        line = " ".join(
            f"{coord(xv)},{coord(y(p.rate))}" for xv, p in zip(xs, series, strict=False)
        )
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        for xv, p in zip(xs, series, strict=False):
            tip = (
                f"{p.at:%Y-%m-%d %H:%M:%S} UTC: {p.rate:.2%} [{p.low:.2%}, {p.high:.2%}] of {p.n:,}"
            )
            if not dashed:
                parts.append(
                    f'<line x1="{coord(xv)}" x2="{coord(xv)}" y1="{coord(y(p.low))}" y2="{coord(y(p.high))}" '
                    f'stroke="{colour}" stroke-width="1" opacity="0.6"/>'
                )
            parts.append(
                f'<circle cx="{coord(xv)}" cy="{coord(y(p.rate))}" r="{2.2 if dashed else 3}" '
                f'fill="{colour}" data-tip="{escape(tip)}"><title>{escape(tip)}</title></circle>'
            )
    parts.append("</g>")
    items = [("challenger (95% CI band)", CHALLENGER, "solid")]
    if floor:
        items.append(("control = noise floor", FLOOR, "dashed"))
    parts.append(legend(frame, items))
    parts.append("</svg>")
    return "".join(parts)


# -- horizontal bars with intervals ------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float | None
    high: float | None
    colour: str
    tip: str


def bar_chart(
    groups: Sequence[tuple[str, Sequence[Bar]]],
    title: str,
    axis_label: str,
    reference: tuple[float, str, str] | None = None,
    frame: Frame | None = None,
    label_width: int = 150,
    legend_items: Sequence[tuple[str, str, str]] = (),
    fmt: Callable[[float], str] = fmt_pct,
) -> str:
    """Horizontal bars (grouped), each with a CI whisker; an optional reference line.
    ``fmt`` formats the axis ticks and bar values (default: percentages)."""
    rows = sum(max(len(bars), 1) for _, bars in groups)
    if rows == 0:
        return empty_chart(frame or Frame(), title, "nothing to show")
    bar_h, gap = 14, 10
    height = 30 + rows * (bar_h + 3) + len(groups) * gap + 40
    base = frame or Frame()
    frame = Frame(base.width, max(height, 120), label_width, base.right, 30, 40)
    values = [v for _, bars in groups for b in bars for v in (b.value, b.high or 0.0)]
    if reference:
        values.append(reference[0])
    top = max([*values, 0.01]) * 1.3
    x = Linear(0, top, frame.x0, frame.x1)
    parts = [open_svg(frame, title)]
    if legend_items:
        parts.append(legend(frame, legend_items))
    for tick in nice_ticks(0, top, 4):
        xv = x(tick)
        parts.append(
            f'<line x1="{coord(xv)}" x2="{coord(xv)}" y1="{coord(frame.y1)}" y2="{coord(frame.y0)}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(text(xv, frame.y0 + 16, fmt(tick)))
    parts.append(text((frame.x0 + frame.x1) / 2, frame.height - 6, axis_label, cls="axis-label"))
    parts.append('<g class="marks">')
    yv = float(frame.y1)
    for group, bars in groups:
        if group:
            parts.append(text(frame.x0 - 8, yv + 10, group, "end", "group"))
        for bar in bars:
            width = max(x(bar.value) - frame.x0, 0.8)
            parts.append(
                f'<rect x="{coord(frame.x0)}" y="{coord(yv)}" width="{coord(width)}" height="{bar_h}" '
                f'fill="{bar.colour}" opacity="0.85" data-tip="{escape(bar.tip)}">'
                f"<title>{escape(bar.tip)}</title></rect>"
            )
            if bar.low is not None and bar.high is not None:
                mid = yv + bar_h / 2
                parts.append(
                    f'<line x1="{coord(x(bar.low))}" x2="{coord(x(bar.high))}" y1="{coord(mid)}" '
                    f'y2="{coord(mid)}" stroke="{INK}" stroke-width="1.5"/>'
                )
                for end in (bar.low, bar.high):
                    parts.append(
                        f'<line x1="{coord(x(end))}" x2="{coord(x(end))}" y1="{coord(mid - 4)}" '
                        f'y2="{coord(mid + 4)}" stroke="{INK}" stroke-width="1.5"/>'
                    )
            label_x = max(x(bar.high or bar.value), x(bar.value)) + 5
            parts.append(text(label_x, yv + 11, fmt(bar.value), "start", "value"))
            if not group:
                parts.append(text(frame.x0 - 8, yv + 11, bar.label, "end", "bar-label"))
            yv += bar_h + 3
        yv += gap
    if reference:
        value, colour, label = reference
        xv = x(value)
        parts.append(
            f'<line x1="{coord(xv)}" x2="{coord(xv)}" y1="{coord(frame.y1 - 4)}" y2="{coord(frame.y0)}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        parts.append(text(xv, frame.y1 - 8, label, "middle", "ref"))
    parts.append("</g></svg>")
    return "".join(parts)
