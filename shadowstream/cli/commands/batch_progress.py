"""A batch run in the terminal: its plan, live progress bars, and the result."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        shown = f"{speed:,.0f}" if speed >= 10 else f"{speed:.1f}"
        return Text(f"{shown}/s", style="progress.data.speed")


class ProgressView:
    """Two bars: requests submitted, and results (compared, or known never to come)."""

    def __init__(self) -> None:
        from shadowstream.cli.output import console

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<10}"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}", style="dim"),
            console=console,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, p: Any) -> None:
        r = p.results
        submit_detail = f"{r.in_flight:,} in flight (≤{p.in_flight_limit:,}, ≤{p.rate:g}/s)"
        result_detail = f"{r.compared:,} compared, {r.failed:,} failed"
        if r.unrouted:
            result_detail += f", {r.unrouted:,} not routed"
        if r.skipped:
            result_detail += f", {r.skipped:,} skipped"
        if not self.tasks:
            self.tasks["submit"] = self.progress.add_task(
                "submitted", total=p.to_submit, detail=submit_detail
            )
            self.tasks["results"] = self.progress.add_task(
                "results", total=p.expected, completed=r.final, detail=result_detail
            )
        self.progress.update(
            self.tasks["submit"], completed=p.submitted, total=p.to_submit, detail=submit_detail
        )
        self.progress.update(self.tasks["results"], completed=r.final, detail=result_detail)
        for provider in p.providers:
            key = f"provider:{provider.challenger}"
            done = provider.succeeded + provider.errored + provider.expired + provider.cancelled
            detail = (
                f"{provider.provider}: {provider.ended}/{provider.batches} batches ended "
                f"({provider.statuses}); {provider.errored:,} errored, {provider.expired:,} expired"
            )
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(
                    provider.challenger[:10], total=provider.requests, detail=detail
                )
            self.progress.update(
                self.tasks[key], completed=done, total=provider.requests, detail=detail
            )


def print_plan(plan: Any) -> None:
    from shadowstream.cli.output import console

    record = plan.record
    verb = "resuming" if plan.resumed else "starting"
    console.print(
        f"{verb} batch run [bold]{record.experiment_id}[/]: {record.total:,} items from "
        f"{record.source} through {', '.join(record.challengers)}",
        highlight=False,
    )
    if record.source_kind == "eval":
        scanned = plan.source.scan()
        missing = scanned.items - scanned.with_reference
        if missing:
            console.print(
                f"  {missing:,} of {scanned.items:,} items have no reference: they are compared "
                "as champion_missing after the join window (challenger latency, status, format)",
                style="dim",
                highlight=False,
            )
    for note in plan.notes:
        console.print(f"  note: {note}", style="dim", highlight=False)


def print_result(result: Any) -> None:
    from shadowstream.cli.output import console
    from shadowstream.experiments.store import RESUMABLE

    record, p = result.record, result.progress
    r = p.results
    run_id = record.experiment_id
    console.print(
        f"{run_id}: [bold]{record.status}[/] - {p.submitted:,} submitted now "
        f"({p.already_done:,} already done), {r.compared:,}/{p.expected:,} compared, "
        f"{r.failed:,} failed",
        highlight=False,
    )
    if record.message:
        console.print(f"  {record.message}", highlight=False)
    if record.status in RESUMABLE:
        console.print(f"  continue with: shadow batch run --resume {run_id}", highlight=False)
    console.print(
        f"  report: shadow report --experiment {run_id}    status: shadow batch status {run_id}",
        style="dim",
        highlight=False,
    )
