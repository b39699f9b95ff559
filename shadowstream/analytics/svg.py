"""SVG building blocks of the report's charts: frames, scales, ticks, axes, legends.

Colours: champion slate, challenger blue, control/noise floor amber, significant red.
"""

from __future__ import annotations

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


def coord(value: float) -> str:
    """A coordinate as the SVG shows it (one decimal)."""
    return f"{value:.1f}"


def open_svg(frame: Frame, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    )


def text(x: float, y: float, content: str, anchor: str = "middle", cls: str = "tick") -> str:
    return (
        f'<text x="{coord(x)}" y="{coord(y)}" text-anchor="{anchor}" class="{cls}">'
        f"{escape(content)}</text>"
    )


def y_axis(
    frame: Frame, scale: Linear, ticks: Sequence[float], fmt: Callable[[float], str], label: str
) -> str:
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line x1="{coord(frame.x0)}" x2="{coord(frame.x1)}" y1="{coord(y)}" y2="{coord(y)}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(text(frame.x0 - 6, y + 4, fmt(tick), "end"))
    parts.append(
        f'<text transform="translate(14,{coord((frame.y0 + frame.y1) / 2)}) rotate(-90)" '
        f'text-anchor="middle" class="axis-label">{escape(label)}</text>'
    )
    return "".join(parts)


def x_axis(
    frame: Frame, scale: Linear, ticks: Sequence[float], fmt: Callable[[float], str], label: str
) -> str:
    parts = [
        f'<line x1="{coord(frame.x0)}" x2="{coord(frame.x1)}" y1="{coord(frame.y0)}" y2="{coord(frame.y0)}" '
        f'stroke="#94a3b8"/>'
    ]
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line x1="{coord(x)}" x2="{coord(x)}" y1="{coord(frame.y0)}" y2="{coord(frame.y0 + 4)}" '
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
                f'<rect x="{coord(x)}" y="8" width="12" height="10" fill="{colour}" opacity="0.8"/>'
            )
        else:
            dash = {"dashed": ' stroke-dasharray="5 3"', "dotted": ' stroke-dasharray="2 3"'}.get(
                style, ""
            )
            parts.append(
                f'<line x1="{coord(x)}" x2="{coord(x + 14)}" y1="13" y2="13" stroke="{colour}" '
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
