"""Terminal tables of the report's LLM sections: judge verdicts, batch vs live cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from shadowstream.cli.formatting import rate_ci, titled_table

if TYPE_CHECKING:
    from shadowstream.analytics.model import Report


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def judge_table(report: Report) -> Table:
    table = titled_table(
        "LLM judge: the challenger's answer vs the champion's, where the cheaper "
        "comparators could not decide",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("judged", "right"),
            ("better [CI]", "right"),
            ("same [CI]", "right"),
            ("worse [CI]", "right"),
            ("undecided", "right"),
            ("skipped", "right"),
            ("errors", "right"),
        ],
        caption="shares of the judged pairs with Wilson intervals; undecided = the two orders "
        "(answers swapped) disagree; skipped = over the judge's budget",
    )
    for j in report.judge:
        table.add_row(
            j.challenger,
            j.experiment_id,
            f"{j.judged:,}",
            rate_ci(j.better),
            rate_ci(j.same),
            rate_ci(j.worse),
            rate_ci(j.undecided),
            f"{j.skipped:,}",
            f"{j.errors:,}",
        )
    return table


def costs_table(report: Report) -> Table:
    table = titled_table(
        "Cost per 1,000 answered requests: this batch run vs live",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("batch run", "right"),
            ("live", "right"),
            ("basis", "left"),
            ("saving", "right"),
        ],
        caption="batch: at the batch price (provider batch APIs charge ~50%); live: measured on "
        "the challenger's live traffic in range, else its tokens here at the configured live price",
    )
    for c in report.costs:
        saving = c.saving
        table.add_row(
            c.challenger,
            c.experiment_id,
            f"{_money(c.batch_per_1k)} (n={c.batch_answers:,})",
            _money(c.live_per_1k) + (f" (n={c.live_answers:,})" if c.live_answers else ""),
            c.live_basis or "no live cost known",
            "-" if saving is None else f"{saving:.0%}",
        )
    return table
