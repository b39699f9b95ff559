"""Terminal rendering: tables and numbers, nothing that computes results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


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


def summary_table(rows: Sequence[dict[str, Any]], title: str = "Shadow comparisons") -> Table:
    table = Table(title=title, title_justify="left")
    for header, justify in [
        ("challenger", "left"),
        ("experiment", "left"),
        ("requests", "right"),
        ("diverged", "right"),
        ("champion p50/p95 ms", "right"),
        ("challenger p50/p95 ms", "right"),
        ("chall. errors", "right"),
        ("chall. missing", "right"),
    ]:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            str(row["challenger"]),
            str(row["experiment_id"]),
            num(row["comparisons"]),
            pct(row["divergence_rate"]),
            f"{ms(row['champion_p50_ms'])} / {ms(row['champion_p95_ms'])}",
            f"{ms(row['challenger_p50_ms'])} / {ms(row['challenger_p95_ms'])}",
            pct(row["challenger_error_rate"]),
            pct(row["challenger_missing_rate"]),
        )
    return table
