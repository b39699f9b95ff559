"""Numbers as the terminal shows them, and the tables they go in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from shadowstream.analytics.model import Rate


def pct(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{float(value) * 100:.{digits}f}%"


def ms(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value != value:  # NaN: no samples
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def num(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def rate_pct(value: float | None) -> str:
    """A rate with enough digits to tell 0.2% from 0.04%."""
    if value is None:
        return "-"
    digits = 2 if abs(value) < 0.01 else 1
    return pct(value, digits)


def signed_pct(value: float | None) -> str:
    if value is None:
        return "-"
    digits = 2 if abs(value) < 0.01 else 1
    return f"{value * 100:+.{digits}f}pp"


def rate_ci(rate: Rate) -> str:
    if rate.value is None:
        return "-"
    return f"{rate_pct(rate.value)} [{rate_pct(rate.low)}, {rate_pct(rate.high)}]"


def pair(champion: str, challenger: str) -> str:
    return f"{champion} → {challenger}"


def titled_table(title: str, columns: list[tuple[str, str]], caption: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for header, justify in columns:
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table
