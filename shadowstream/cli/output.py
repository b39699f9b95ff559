"""Terminal rendering: tables and numbers, nothing that computes results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from shadowstream.cli.formatting import (
    ms,
    num,
    pair,
    pct,
    rate_ci,
    rate_pct,
    signed_pct,
    titled_table,
)
from shadowstream.cli.gate_output import gate_table, gate_verdict
from shadowstream.cli.output_resources import extra_renderables

if TYPE_CHECKING:
    from shadowstream.analytics.model import ChallengerReport, Report

# the formatters and the gate's rendering, importable from here as before
__all__ = [
    "console",
    "err_console",
    "gate_table",
    "gate_verdict",
    "ms",
    "num",
    "pair",
    "pct",
    "rate_ci",
    "rate_pct",
    "report_renderable",
    "signed_pct",
    "summary_table",
]

console = Console()
err_console = Console(stderr=True)


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


# -- the full report ------------------------------------------------------------------------------
def _name(row: ChallengerReport) -> str:
    return f"{row.challenger} (A/A)" if row.is_control else row.challenger


def report_header(report: Report) -> Text:
    since = "the beginning" if report.since.year <= 1970 else f"{report.since:%Y-%m-%d %H:%M}"
    until = "now" if report.until.year >= 2299 else f"{report.until:%Y-%m-%d %H:%M}"
    source = "comparisons FINAL (exact)" if report.exact else "rollups (each comparison once)"
    text = Text()
    text.append("Shadow report", style="bold")
    text.append(
        f"  {since} → {until} UTC · experiment {report.experiment or 'all'} · "
        f"control{'s' if ',' in report.control else ''} {report.control} · "
        f"{report.confidence:.0%} intervals · from {source}"
    )
    return text


def divergence_table(report: Report) -> Table:
    table = titled_table(
        "Divergence from the champion, and above the noise floor (the control's A/A rate)",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("requests", "right"),
            ("compared", "right"),
            ("divergence [CI]", "right"),
            ("noise floor", "right"),
            ("above floor [CI]", "right"),
            ("significant", "center"),
        ],
        caption="CI: Wilson score; above floor: Newcombe interval of the difference "
        "(significant when it excludes 0)",
    )
    for row in report.challengers:
        floor = row.floor
        if row.is_control:
            floor_cells = ["(is the floor)", "-", "-"]
        elif floor is None:
            floor_cells = ["no control", "-", "-"]
        else:
            span = (
                f"{signed_pct(floor.difference)} [{signed_pct(floor.low)}, {signed_pct(floor.high)}]"
                if floor.difference is not None
                else "-"
            )
            verdict = "-"
            if floor.difference is not None:
                verdict = (
                    ("[red]yes ▲[/]" if floor.difference > 0 else "[green]yes ▼[/]")
                    if floor.significant
                    else "no"
                )
            shown = rate_pct(floor.control_rate.value)
            if "," in report.control:  # several controls: say whose floor it is
                shown += f" ({floor.control})"
            floor_cells = [shown, span, verdict]
        table.add_row(
            _name(row),
            row.experiment_id,
            num(row.comparisons),
            num(row.divergence.n),
            rate_ci(row.divergence),
            *floor_cells,
        )
    return table


def _latency_cell(champion: float | None, challenger: float | None, delta: float | None) -> str:
    text = pair(ms(champion), ms(challenger))
    if delta is not None:
        style = "red" if delta > 10 else ("green" if delta < -10 else "")
        change = f"{delta:+.0f}%"
        text += f" ({f'[{style}]{change}[/]' if style else change})"
    return text


def latency_table(report: Report) -> Table:
    table = titled_table(
        "Latency of successful responses, ms (champion → challenger)",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("p50", "right"),
            ("p95", "right"),
            ("p99", "right"),
            ("p95 vs control", "right"),
        ],
        caption="p95 vs control: the challenger against its A/A control, the champion model "
        "timed on the same shadow path (what the gate judges by default)",
    )
    for row in report.challengers:
        a, b, d = row.champion, row.challenger_side, row.latency_delta
        versus = "-"
        if row.control and not row.is_control:
            versus = _latency_cell(row.control_p95_ms, b.latency_p95_ms, row.p95_vs_control_pct)
        table.add_row(
            _name(row),
            row.experiment_id,
            _latency_cell(a.latency_p50_ms, b.latency_p50_ms, d.p50_pct),
            _latency_cell(a.latency_p95_ms, b.latency_p95_ms, d.p95_pct),
            _latency_cell(a.latency_p99_ms, b.latency_p99_ms, d.p99_pct),
            versus,
        )
    return table


def provisional_note(report: Report) -> Text | None:
    """How many comparisons were left out because the noise model was not ready yet."""
    rows = [r for r in report.challengers if r.provisional]
    if not rows:
        return None
    counts = ", ".join(f"{_name(r)} {r.provisional:,}" for r in rows)
    return Text(
        f"Left out of divergence (provisional): {counts} - judged before their endpoint's "
        "noise model had seen enough control comparisons; not counted as agreement or "
        "divergence, still counted for latency and failures."
    )


def failures_table(report: Report) -> Table:
    table = titled_table(
        "Failures (share of comparisons; invalid format: share of checked outputs)",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("errors", "right"),
            ("timeouts", "right"),
            ("missing", "right"),
            ("invalid format", "right"),
            ("failure Δ [CI]", "right"),
            ("late", "right"),
        ],
        caption="champion → challenger; failure Δ: challenger minus champion failure rate "
        "on the same requests (Newcombe paired interval)",
    )
    for row in report.challengers:
        a, b = row.champion, row.challenger_side
        ci = row.failure_increase_ci
        delta = (
            f"{signed_pct(row.failure_increase)} [{signed_pct(ci.low)}, {signed_pct(ci.high)}]"
            if ci is not None
            else "-"
        )
        table.add_row(
            _name(row),
            row.experiment_id,
            pair(rate_pct(a.errors.value), rate_pct(b.errors.value)),
            pair(rate_pct(a.timeouts.value), rate_pct(b.timeouts.value)),
            pair(rate_pct(a.missing.value), rate_pct(b.missing.value)),
            pair(rate_pct(a.invalid_format.value), rate_pct(b.invalid_format.value)),
            delta,
            num(row.late),
        )
    return table


def _avg(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def usage_table(report: Report) -> Table:
    table = titled_table(
        "Usage per request (champion → challenger)",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("tokens in", "right"),
            ("tokens out", "right"),
            ("tool calls", "right"),
            ("cost", "right"),
        ],
    )
    for row in report.challengers:
        a, b = row.champion, row.challenger_side
        table.add_row(
            _name(row),
            row.experiment_id,
            pair(_avg(a.tokens_in), _avg(b.tokens_in)),
            pair(_avg(a.tokens_out), _avg(b.tokens_out)),
            pair(_avg(a.tool_calls, 2), _avg(b.tool_calls, 2)),
            pair(_avg(a.cost, 5), _avg(b.cost, 5)),
        )
    return table


def slices_table(report: Report) -> Table:
    table = titled_table(
        "Where challengers diverge: top attribute slices",
        [
            ("challenger", "left"),
            ("exp.", "left"),
            ("slice", "left"),
            ("compared", "right"),
            ("divergence [CI]", "right"),
            ("rest", "right"),
            ("lift", "right"),
            ("p (Bonf.)", "right"),
            ("", "left"),
        ],
        caption="ranked by the lower CI bound; ▲ = significantly above the challenger's other "
        "requests (one-sided z-test, Bonferroni over all slices tested)",
    )
    for s in report.slices:
        p = "-" if s.p_value is None else ("<0.001" if s.p_value < 0.001 else f"{s.p_value:.3f}")
        table.add_row(
            s.challenger,
            s.experiment_id,
            f"{s.attribute}={s.value}",
            num(s.divergence.n),
            rate_ci(s.divergence),
            rate_pct(s.rest_rate),
            "-" if s.lift is None else f"{s.lift:.1f}x",
            p,
            "[bold red]▲ significant[/]" if s.significant else "",
        )
    return table


def examples_table(report: Report) -> Table:
    table = titled_table(
        "Most recent divergent or failed comparisons",
        [
            ("challenger", "left"),
            ("time (UTC)", "left"),
            ("request id", "left"),
            ("kind", "left"),
            ("attributes", "left"),
            ("diff / error", "left"),
        ],
    )
    table.columns[2].no_wrap = True
    table.columns[1].no_wrap = True
    for e in report.examples:
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()))
        detail = e.diff_summary if e.kind == "diverged" else (e.challenger_error or e.diff_summary)
        when = f"{e.request_time:%m-%d %H:%M:%S}" if e.request_time else "-"
        rid = f"{e.request_id}\ntrace {e.trace_id}" if e.trace_id else e.request_id
        table.add_row(e.challenger, when, rid, e.kind, attrs, _clip(detail, 90))
    return table


def _clip(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def report_renderable(report: Report) -> RenderableType:
    if report.empty:
        return Text("no comparisons in that range yet")
    parts: list[RenderableType] = [report_header(report), divergence_table(report)]
    note = provisional_note(report)
    if note is not None:
        parts.append(note)
    parts += [latency_table(report), failures_table(report), usage_table(report)]
    if report.slices:
        parts.append(slices_table(report))
    if report.examples:
        parts.append(examples_table(report))
    parts += extra_renderables(report)  # measures, resources, projected bill
    if report.judge or report.costs:
        from shadowstream.cli.llm_output import costs_table, judge_table

        parts += [judge_table(report)] if report.judge else []
        parts += [costs_table(report)] if report.costs else []
    return Group(*parts)
