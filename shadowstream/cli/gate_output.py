"""The promotion gate in the terminal: a table of its criteria, and the verdict line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from shadowstream.cli.formatting import rate_pct, signed_pct, titled_table

if TYPE_CHECKING:
    from shadowstream.analytics.gate import Criterion, GateResult


def _value(criterion: Criterion, value: float | None) -> str:
    if value is None:
        return "-"
    if criterion.unit == "count":
        return f"{int(value):,}"
    if criterion.unit == "pct":
        return f"{value:+.1f}%"
    if criterion.unit == "amount":
        return f"{value:,.2f}"
    if criterion.name.endswith("increase") or criterion.name.startswith("divergence above"):
        return signed_pct(value)
    return rate_pct(value)


STATUS_STYLE = {
    "pass": "[green]pass[/]",
    "fail": "[bold red]FAIL[/]",
    "undecided": "[yellow]undecided[/]",
    "skipped": "[dim]skipped[/]",
}
VERDICT_STYLE = {
    "promote": "[bold green]PROMOTE[/] (exit 0)",
    "fail": "[bold red]FAIL[/] (exit 1)",
    "not enough data": "[bold yellow]NOT ENOUGH DATA YET[/] (exit 2)",
}


def _bounds_caption(result: GateResult) -> str:
    if result.method == "anytime-valid":
        return "anytime-valid confidence sequences (valid at every check)"
    return f"one-sided {result.confidence:.0%} bounds"


def gate_table(result: GateResult) -> Table:
    table = titled_table(
        f"Gate: {result.challenger} (experiment {result.experiment_id})",
        [
            ("criterion", "left"),
            ("threshold", "right"),
            ("estimate", "right"),
            ("pessimistic", "right"),
            ("optimistic", "right"),
            ("result", "left"),
            ("", "left"),
        ],
        caption=f"{_bounds_caption(result)}. pass: the pessimistic bound meets the "
        "threshold; FAIL: even the optimistic bound misses it; undecided: more data needed"
        + (f"; control: {result.control}" if result.control else "; no A/A control"),
    )
    for c in result.criteria:
        table.add_row(
            c.name,
            c.threshold,
            _value(c, c.estimate),
            _value(c, c.pessimistic),
            _value(c, c.optimistic),
            STATUS_STYLE[c.status],
            c.note,
        )
    return table


def gate_verdict(result: GateResult) -> str:
    line = f"{result.challenger} / {result.experiment_id}: {VERDICT_STYLE[result.verdict]}"
    if result.verdict == "not enough data" and result.undecided:
        line += f" - undecided: {', '.join(result.undecided)}"
    elif result.verdict == "fail":
        reasons = [f"{c.name}{f' ({c.note})' if c.note else ''}" for c in result.failed]
        line += f" - failed: {'; '.join(reasons)}"
    return line
