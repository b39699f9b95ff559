"""``shadow show <request_id>``: one request, the champion's and each challenger's answer side by side.

Differences are highlighted: JSON answers per path, text answers word by
word. Latency, tokens, cost, errors, the comparison and the LLM judge's
verdict and rationale come with them. Everything shown is read from
ClickHouse as stored (redacted fields stay redacted).
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shadowstream.cli.connection import connection_options, open_settings_warehouse
from shadowstream.core.errors import NotFoundError

DELETED, INSERTED = "bold white on red3", "bold black on green3"
JUDGE_STYLE = {"better": "green", "same": "cyan", "worse": "red", "undecided": "yellow"}


def register(cli: click.Group) -> None:
    cli.add_command(show)


@click.command()
@click.argument("request_id")
@click.option(
    "--experiment",
    default=None,
    help="The run it belongs to (default: live, or the run named by a batch request id's prefix).",
)
@click.option(
    "--challenger", "challengers", multiple=True, help="Only this challenger (repeatable)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--max-chars",
    type=click.IntRange(min=100),
    default=4_000,
    show_default=True,
    help="Clip each input/answer shown in the table to this many characters.",
)
@connection_options
@click.pass_context
def show(
    ctx: click.Context,
    /,
    request_id: str,
    experiment: str | None,
    challengers: tuple[str, ...],
    fmt: str,
    max_chars: int,
    **connection: Any,
) -> None:
    """Show a request's input and every answer side by side, differences highlighted."""
    from shadowstream.analytics.model import to_jsonable
    from shadowstream.analytics.sidebyside import fetch_request
    from shadowstream.cli.context import load
    from shadowstream.cli.output import console

    settings = load(ctx, **connection)
    warehouse = open_settings_warehouse(settings, readonly=True)
    views = fetch_request(warehouse, request_id, experiment, challengers)
    if not views:
        where = f" in experiment {experiment!r}" if experiment else ""
        raise NotFoundError(
            f"no request {request_id!r} stored{where} (request ids are in `shadow report` "
            "examples and in the comparisons table)"
        )
    if fmt == "json":
        click.echo(json.dumps([_json(to_jsonable(v), v) for v in views], indent=2))
        return
    markers = console.no_color or not console.is_terminal
    for view in views:
        console.print(render_view(view, max_chars, markers))


def _json(data: dict[str, Any], view: Any) -> dict[str, Any]:
    for side, raw in zip(data["sides"], view.sides, strict=True):
        side["diff"]["changed"] = raw.diff.changed
    return data


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + f"… (+{len(text) - limit:,} chars)"


def render_view(view: Any, max_chars: int = 4_000, markers: bool = False) -> RenderableType:
    from shadowstream.analytics.textdiff import as_text, parse

    head = Text()
    head.append(view.request_id, style="bold")
    when = f"{view.request_time:%Y-%m-%d %H:%M:%S} UTC" if view.request_time else "time unknown"
    head.append(
        f"  experiment {view.experiment_id} · {view.service or '-'} {view.endpoint} · {when}"
    )
    if view.attributes:
        head.append("\n" + ", ".join(f"{k}={v}" for k, v in sorted(view.attributes.items())))
    parts: list[RenderableType] = [head]
    if view.input is None:
        parts.append(Text("input: not stored (sink_raw_events is off)", style="dim"))
    else:
        parts.append(
            Panel(_clip(as_text(parse(view.input)), max_chars), title="input", title_align="left")
        )
    if not view.sides:
        parts.append(Text("no comparison stored for this request", style="dim"))
    for side in view.sides:
        parts.append(render_side(side, max_chars, markers))
    return Group(*parts)


def _facts(answer: Any) -> str:
    if answer is None:
        return "missing"
    bits = [answer.status]
    if answer.latency_ms is not None:
        bits.append(f"{answer.latency_ms:,.0f} ms")
    if answer.tokens_in is not None or answer.tokens_out is not None:
        bits.append(
            f"tokens {answer.tokens_in if answer.tokens_in is not None else '-'}"
            f" → {answer.tokens_out if answer.tokens_out is not None else '-'}"
        )
    if answer.cost is not None:
        bits.append(f"${answer.cost:.6f}")
    return " · ".join(bits)


def render_side(side: Any, max_chars: int, markers: bool) -> RenderableType:
    champion, answer = side.champion, side.answer
    table = Table(
        show_header=True,
        expand=True,
        title_justify="left",
        title=f"{side.challenger} · {side.outcome} · {side.comparator or '-'}",
    )
    table.add_column(f"champion ({champion.model if champion else '-'})", ratio=1)
    table.add_column(f"{side.challenger} ({answer.model if answer else '-'})", ratio=1)
    table.add_row(Text(_facts(champion), style="dim"), Text(_facts(answer), style="dim"))
    left, right = _answer_texts(side, max_chars, markers)
    table.add_row(left, right)
    errors = [a.error if a and a.error else "" for a in (champion, answer)]
    if any(errors):
        table.add_row(Text(errors[0], style="red"), Text(errors[1], style="red"))
    parts: list[RenderableType] = [table]
    if side.diff.kind == "json":
        parts.append(_paths_table(side.diff, max_chars))
    verdict = "diverged" if side.diverged else "undecided" if side.diverged is None else "agrees"
    summary = Text(f"comparison: {verdict}", style="bold")
    if side.diff_summary:
        summary.append(f" - {side.diff_summary}", style="")
    parts.append(summary)
    if side.judge_verdict:
        judge = Text("judge: ", style="bold")
        judge.append(side.judge_verdict, style=JUDGE_STYLE.get(side.judge_verdict, "magenta"))
        if side.judge_rationale:
            judge.append(f" - {side.judge_rationale}")
        parts.append(judge)
    return Group(*parts)


def _answer_texts(side: Any, max_chars: int, markers: bool) -> tuple[Text, Text]:
    champion, answer = side.champion, side.answer
    if side.diff.kind != "text":
        return (
            Text(_clip(champion.text, max_chars) if champion and champion.output else "-"),
            Text(_clip(answer.text, max_chars) if answer and answer.output else "-"),
        )
    left, right = Text(), Text()
    for run in side.diff.runs:
        if run.op == "equal":
            left.append(run.champion)
            right.append(run.challenger)
            continue
        if run.champion:
            left.append(f"[-{run.champion}-]" if markers else run.champion, style=DELETED)
        if run.challenger:
            right.append(f"{{+{run.challenger}+}}" if markers else run.challenger, style=INSERTED)
    for text in (left, right):
        if len(text) > max_chars:
            text.truncate(max_chars)
            text.append("…")
    return left, right


def _paths_table(diff: Any, max_chars: int) -> Table:
    table = Table(title="differences by path", title_justify="left", expand=True)
    table.add_column("path", no_wrap=True)
    table.add_column("champion", ratio=1)
    table.add_column("challenger", ratio=1)
    limit = max(40, max_chars // 10)
    for change in diff.paths:
        table.add_row(
            change.path,
            Text(_clip(change.champion or "(absent)", limit), style=DELETED),
            Text(_clip(change.challenger or "(absent)", limit), style=INSERTED),
        )
    if diff.truncated:
        table.add_row("…", "more paths not shown", "")
    return table
