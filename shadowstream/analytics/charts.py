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

CHAMPION = "#64748b"
CHALLENGER = "#2563eb"
FLOOR = "#d97706"
ALERT = "#dc2626"
GRID = "#e5e7eb"
INK = "#334155"


@dataclass(frozen=True)
class Frame:
    width: int = 560
    height: int = 250
    left: int = 58
    right: int = 18
    top: int = 26
    bottom: int = 40

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top


class Linear:
    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        if d1 == d0:
            d0, d1 = d0 - 0.5, d1 + 0.5
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1

    def __call__(self, value: float) -> float:
        return self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


class Log(Linear):
    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        super().__init__(math.log10(d0), math.log10(d1), r0, r1)

    def __call__(self, value: float) -> float:
        return super().__call__(math.log10(max(value, 1e-9)))


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        if value >= lo - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(value)
    return ticks


def fmt_ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}s"
    return f"{value:g}"


def fmt_pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def _f(value: float) -> str:
    return f"{value:.1f}"


def open_svg(frame: Frame, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    )


def text(x: float, y: float, content: str, anchor: str = "middle", cls: str = "tick") -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" class="{cls}">'
        f"{escape(content)}</text>"
    )


def y_axis(
    frame: Frame, scale: Linear, ticks: Sequence[float], fmt: Callable[[float], str], label: str
) -> str:
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(text(frame.x0 - 6, y + 4, fmt(tick), "end"))
    parts.append(
        f'<text transform="translate(14,{_f((frame.y0 + frame.y1) / 2)}) rotate(-90)" '
        f'text-anchor="middle" class="axis-label">{escape(label)}</text>'
    )
    return "".join(parts)


def x_axis(
    frame: Frame, scale: Linear, ticks: Sequence[float], fmt: Callable[[float], str], label: str
) -> str:
    parts = [
        f'<line x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(frame.y0)}" y2="{_f(frame.y0)}" '
        f'stroke="#94a3b8"/>'
    ]
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(frame.y0)}" y2="{_f(frame.y0 + 4)}" '
            f'stroke="#94a3b8"/>'
        )
        anchor = "end" if x > frame.x1 - 25 else ("start" if x < frame.x0 + 10 else "middle")
        parts.append(text(x, frame.y0 + 16, fmt(tick), anchor))
    parts.append(text((frame.x0 + frame.x1) / 2, frame.height - 6, label, cls="axis-label"))
    return "".join(parts)


def legend(frame: Frame, items: Sequence[tuple[str, str, str]]) -> str:
    """items: (label, colour, style) with style 'solid', 'dashed' or 'box'."""
    parts, x = [], frame.x0
    for label, colour, style in items:
        if style == "box":
            parts.append(
                f'<rect x="{_f(x)}" y="8" width="12" height="10" fill="{colour}" opacity="0.8"/>'
            )
        else:
            dash = {"dashed": ' stroke-dasharray="5 3"', "dotted": ' stroke-dasharray="2 3"'}.get(
                style, ""
            )
            parts.append(
                f'<line x1="{_f(x)}" x2="{_f(x + 14)}" y1="13" y2="13" stroke="{colour}" '
                f'stroke-width="2.5"{dash}/>'
            )
        parts.append(text(x + 18, 17, label, "start", "legend"))
        x += 26 + 7 * len(label)
    return "".join(parts)


def empty_chart(frame: Frame, label: str, message: str) -> str:
    return (
        open_svg(frame, label)
        + '<g class="marks">'
        + text(frame.width / 2, frame.height / 2, message, cls="empty")
        + "</g></svg>"
    )


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
        path = " ".join(f"{_f(x(m))},{_f(y(v))}" for m, v in zip(mids, dist, strict=False))
        area = f"{_f(x(mids[0]))},{_f(frame.y0)} {path} {_f(x(mids[-1]))},{_f(frame.y0)}"
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
                f'<line x1="{_f(xv)}" x2="{_f(xv)}" y1="{_f(frame.y0)}" y2="{_f(frame.y1 + 8)}" '
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
            upper = " ".join(f"{_f(xv)},{_f(y(p.high))}" for xv, p in zip(xs, series, strict=False))
            lower = " ".join(
                f"{_f(xv)},{_f(y(p.low))}"
                for xv, p in reversed(list(zip(xs, series, strict=False)))
            )
            parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.15"/>')
        line = " ".join(f"{_f(xv)},{_f(y(p.rate))}" for xv, p in zip(xs, series, strict=False))
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
                    f'<line x1="{_f(xv)}" x2="{_f(xv)}" y1="{_f(y(p.low))}" y2="{_f(y(p.high))}" '
                    f'stroke="{colour}" stroke-width="1" opacity="0.6"/>'
                )
            parts.append(
                f'<circle cx="{_f(xv)}" cy="{_f(y(p.rate))}" r="{2.2 if dashed else 3}" '
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
            f'<line x1="{_f(xv)}" x2="{_f(xv)}" y1="{_f(frame.y1)}" y2="{_f(frame.y0)}" '
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
                f'<rect x="{_f(frame.x0)}" y="{_f(yv)}" width="{_f(width)}" height="{bar_h}" '
                f'fill="{bar.colour}" opacity="0.85" data-tip="{escape(bar.tip)}">'
                f"<title>{escape(bar.tip)}</title></rect>"
            )
            if bar.low is not None and bar.high is not None:
                mid = yv + bar_h / 2
                parts.append(
                    f'<line x1="{_f(x(bar.low))}" x2="{_f(x(bar.high))}" y1="{_f(mid)}" '
                    f'y2="{_f(mid)}" stroke="{INK}" stroke-width="1.5"/>'
                )
                for end in (bar.low, bar.high):
                    parts.append(
                        f'<line x1="{_f(x(end))}" x2="{_f(x(end))}" y1="{_f(mid - 4)}" '
                        f'y2="{_f(mid + 4)}" stroke="{INK}" stroke-width="1.5"/>'
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
            f'<line x1="{_f(xv)}" x2="{_f(xv)}" y1="{_f(frame.y1 - 4)}" y2="{_f(frame.y0)}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        parts.append(text(xv, frame.y1 - 8, label, "middle", "ref"))
    parts.append("</g></svg>")
    return "".join(parts)
