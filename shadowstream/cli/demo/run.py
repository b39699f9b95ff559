"""``shadow demo``: the whole pipeline on one machine, no Docker."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from shadowstream.analytics.gate import GateResult, run_gate
from shadowstream.analytics.model import Report
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.cli.demo.traffic import WRITE_ENDPOINT, generate
from shadowstream.cli.output import console, gate_verdict, report_renderable
from shadowstream.core.config import Settings, load_settings
from shadowstream.pipeline.app import Pipeline, Roles, create_topics
from shadowstream.pipeline.embedded import EmbeddedBroker
from shadowstream.producers import ShadowEmitter
from shadowstream.sinks.clickhouse.sink import ClickHouseSinkService
from shadowstream.stream_agents.router import RouterService

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["label", "confidence", "summary"],
    "properties": {
        "label": {"enum": ["billing", "shipping", "returns", "technical", "account", "other"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "summary": {"type": "string"},
    },
}
JSON_IGNORING_NOISE = {
    "kind": "json",
    "options": {"ignore_paths": ["$.trace_id", "$.generated_at"]},
}


def demo_settings(broker_url: str, data_dir: Path) -> Settings:
    def challenger(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "callable": f"shadowstream.cli.demo.models:{name}",
            "timeout_seconds": 2.0,
            "concurrency": 64,
            "comparator": JSON_IGNORING_NOISE,
            "output_schema": OUTPUT_SCHEMA,
            **extra,
        }

    return load_settings(
        None,
        broker_url=broker_url,
        clickhouse_url=f"chdb://{data_dir.resolve() / 'chdb'}",
        partitions=4,
        join_window_seconds=5.0,
        late_retention_seconds=60.0,
        write_endpoints=[WRITE_ENDPOINT],
        # latency against the A/A control (same model, same shadow path), and no
        # attribute slice may agree less than 85%: that is what catches `fast`
        gate={"latency_baseline": "control", "min_slice_agreement": 0.85, "min_samples": 200},
        challengers=[
            challenger("fast", model="distilled-v2"),
            challenger("slow", model="large-v5"),
            challenger("flaky", model="prompt-v4"),
            challenger("control", model="champion-v1", control=True),
        ],
    )


async def run_demo(
    *, seconds: float, rate: float, data_dir: Path, keep_data: bool, keep_running: bool
) -> None:
    chdb_dir = data_dir / "chdb"
    if chdb_dir.exists() and not keep_data:
        shutil.rmtree(chdb_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as spin:
        task = spin.add_task("starting the embedded Kafka broker (Tansu)", total=None)
        broker = EmbeddedBroker(log_file=data_dir / "broker.log").start()
        settings = demo_settings(broker.url, data_dir)
        create_topics(settings)
        spin.update(
            task, description="starting agents: router, 4 challenger workers, ClickHouse sink"
        )
        pipeline = Pipeline(settings, Roles.everything(settings), app_id="shadow-demo")
        await pipeline.start()
        spin.update(task, description="waiting for consumer groups to form")
        await pipeline.wait_ready(timeout=60)
    console.print(
        f"[green]ready[/] in {time.monotonic() - t0:.1f}s - broker {broker.url}, "
        f"ClickHouse chdb://{chdb_dir}, metrics http://127.0.0.1:{pipeline.web_port}/metrics"
    )
    env = f"SHADOW_BROKER_URL={broker.url} SHADOW_CLICKHOUSE_URL=chdb://{chdb_dir}"
    console.print(
        "  in another terminal while it runs (queries are routed to this process):\n"
        f"    {env} shadow report\n"
        f"    {env} shadow batch run --challenger fast --source captured --since 1h",
        highlight=False,
    )

    emitter = ShadowEmitter(broker.url, service="support-triage", champion_model="champion-v1")
    router = pipeline.service(RouterService)[0]
    sink = pipeline.service(ClickHouseSinkService)[0]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    try:
        sent = await _traffic_with_progress(emitter, rate, seconds, sink, stop, keep_running)
        emitter.flush(10)
        await _drain(router, sink, settings, stop)
        window = TimeRange(since=started - dt.timedelta(minutes=1))
        report, gates = await loop.run_in_executor(
            None, _report_and_gate, pipeline.warehouse, window, settings
        )
        stats = emitter.stats()
        console.print(
            f"\nsent {sent:,} production requests ({stats.dropped} dropped by the SDK); "
            f"{sink.counters['inserted_comparisons']:,} comparisons stored in ClickHouse"
        )
        width = None if console.is_terminal else 160
        out = Console(width=width)
        out.print(report_renderable(report))
        out.print(
            "divergence ignores $.trace_id and $.generated_at (they differ on every call); "
            f"{WRITE_ENDPOINT} is a write endpoint and is never shadowed."
        )
        out.print(
            "\n[bold]Promotion gate[/] (latency vs the A/A control; every slice must agree >= 85%;"
            " details: shadow gate):"
        )
        for result in gates:
            out.print(gate_verdict(result))
        out.print(
            f"full report: shadow report --clickhouse-url chdb://{chdb_dir}  "
            "(--format html -o report.html for charts)"
        )
    finally:
        emitter.close(5)
        await pipeline.stop()
        broker.stop()
    console.print(f"done in {time.monotonic() - t0:.0f}s; data kept in {chdb_dir}")


def _report_and_gate(
    warehouse: Any, window: TimeRange, settings: Settings
) -> tuple[Report, list[GateResult]]:
    scope = Scope(warehouse, window, "", False)
    report = build_report(
        scope, ReportOptions(control="control", slices_per_challenger=3, examples_per_challenger=2)
    )
    gate = settings.gate
    names = tuple(c.name for c in settings.challengers)
    return report, run_gate(scope, gate, "control", None, names)


async def _traffic_with_progress(
    emitter: ShadowEmitter,
    rate: float,
    seconds: float,
    sink: ClickHouseSinkService,
    stop: asyncio.Event,
    keep_running: bool,
) -> int:
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(
            "{task.fields[sent]:>7,} requests  {task.fields[stored]:>7,} comparisons stored"
        ),
        TimeElapsedColumn(),
    ]
    total = None if keep_running else seconds
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(
            f"production traffic at {rate:.0f} req/s", total=total, sent=0, stored=0
        )
        counter = {"sent": 0}

        def on_progress(sent: int) -> None:
            counter["sent"] = sent

        gen = asyncio.ensure_future(
            generate(
                emitter,
                rate=rate,
                seconds=1e9 if keep_running else seconds,
                on_progress=on_progress,
            )
        )
        start = time.monotonic()
        while not gen.done() and not stop.is_set():
            await asyncio.sleep(0.25)
            progress.update(
                task,
                completed=min(time.monotonic() - start, seconds),
                sent=counter["sent"],
                stored=sink.counters["inserted_comparisons"],
            )
        if not gen.done():
            gen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gen
        return counter["sent"]


async def _drain(
    router: RouterService, sink: ClickHouseSinkService, settings: Settings, stop: asyncio.Event
) -> None:
    """Let open joins complete or time out, and the sink catch up."""
    deadline = time.monotonic() + settings.join_window_seconds + 15
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as spin:
        task = spin.add_task("closing open joins", total=None)
        while time.monotonic() < deadline and not stop.is_set():
            open_requests = router.metrics()["open_requests"]
            emitted = router.counters["comparisons"]
            stored = sink.counters["inserted_comparisons"]
            spin.update(
                task,
                description=f"closing open joins: {open_requests} open, "
                f"{stored:,}/{emitted:,} comparisons stored",
            )
            if open_requests == 0 and stored >= emitted and sink.metrics()["pending_rows"] == 0:
                break
            await asyncio.sleep(0.25)
