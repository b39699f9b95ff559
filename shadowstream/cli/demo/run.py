"""``shadow demo``: the whole pipeline on one machine, no Docker."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from shadowstream.analytics.gate import GateResult, run_gate
from shadowstream.analytics.model import Report
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.analytics.resources import ResourceOptions
from shadowstream.cli.demo.retrieval import retrieval_settings
from shadowstream.cli.demo.retrieval import serve_one as serve_search
from shadowstream.cli.demo.traffic import WRITE_ENDPOINT, generate
from shadowstream.cli.gate_output import gate_verdict
from shadowstream.cli.output import console, report_renderable
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
        # no [gate] settings: the defaults judge latency against the A/A control and
        # every attribute slice, which is what catches `slow` and `fast`
        challengers=[
            challenger("fast", model="distilled-v2"),
            challenger("slow", model="large-v5"),
            challenger("flaky", model="prompt-v4"),
            challenger("control", model="champion-v1", control=True),
        ],
    )


# scenario -> (settings, one production request, service name, note printed under the report)
SCENARIOS: dict[str, tuple[Any, Any, str, str]] = {
    "support": (
        demo_settings,
        None,
        "support-triage",
        "divergence ignores $.trace_id and $.generated_at (they differ on every call); "
        f"{WRITE_ENDPOINT} is a write endpoint and is never shadowed.",
    ),
    "retrieval": (
        retrieval_settings,
        serve_search,
        "search",
        "every challenger is judged by the ranked-list comparator: RBO (p = 0.9) over the "
        "top 10 below 0.8 is a divergence; docs/retrieval.md, docs/resources.md.",
    ),
}


async def run_demo(
    *,
    seconds: float,
    rate: float,
    data_dir: Path,
    keep_data: bool,
    keep_running: bool,
    scenario: str = "support",
) -> None:
    make_settings, serve, service, note = SCENARIOS[scenario]
    chdb_dir = data_dir / "chdb"
    if chdb_dir.exists() and not keep_data:
        shutil.rmtree(chdb_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as spin:
        task = spin.add_task("starting the embedded Kafka broker (Tansu)", total=None)
        broker = EmbeddedBroker(log_file=data_dir / "broker.log").start()
        settings = make_settings(broker.url, data_dir)
        create_topics(settings)
        spin.update(
            task,
            description=f"starting agents: router, {len(settings.challengers)} challenger "
            "workers, ClickHouse sink",
        )
        pipeline = Pipeline(settings, Roles.everything(settings), app_id="shadow-demo")
        await pipeline.start()
        spin.update(task, description="waiting for consumer groups to form")
        await pipeline.wait_ready(timeout=60)
    console.print(
        f"[green]ready[/] in {time.monotonic() - t0:.1f}s - broker {broker.url}, "
        f"ClickHouse chdb://{chdb_dir}, metrics http://127.0.0.1:{pipeline.web_port}/metrics"
    )
    shadow = shadow_command()
    env = f"SHADOW_BROKER_URL={broker.url} SHADOW_CLICKHOUSE_URL=chdb://{chdb_dir.resolve()}"
    console.print(
        "  in another terminal while it runs (queries are routed to this process):",
        highlight=False,
    )
    # one line per command, never wrapped: pasted, it must run as printed
    first = settings.challengers[0].name
    for command in ("report", f"batch run --challenger {first} --source captured --since 1h"):
        console.print(f"    {env} {shadow} {command}", highlight=False, soft_wrap=True)

    emitter = ShadowEmitter(broker.url, service=service, champion_model="champion-v1")
    router = pipeline.service(RouterService)[0]
    sink = pipeline.service(ClickHouseSinkService)[0]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    try:
        sent = await _traffic_with_progress(emitter, rate, seconds, sink, stop, keep_running, serve)
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
        _print_outcome(report, gates, note, settings, chdb_dir, shadow)
    finally:
        emitter.close(5)
        await pipeline.stop()
        broker.stop()
    console.print(f"done in {time.monotonic() - t0:.0f}s; data kept in {chdb_dir}")


def shadow_command() -> str:
    """How to run this same `shadow` from another terminal: `shadow` if that is what the
    PATH finds, `./dev shell` in a checkout started with ./dev, else the script's path."""
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if script is None or script.name != "shadow":
        return f"{shlex.quote(sys.executable)} -m shadowstream.cli"
    on_path = shutil.which("shadow")
    if on_path and Path(on_path).resolve() == script:
        return "shadow"
    checkout = Path.cwd()
    if (checkout / "dev").is_file() and (checkout / ".venv" / "bin" / "shadow").resolve() == script:
        return "./dev shell"
    return shlex.quote(str(script))


def _print_outcome(
    report: Report,
    gates: list[GateResult],
    note: str,
    settings: Settings,
    chdb_dir: Path,
    shadow: str,
) -> None:
    out = Console(width=None if console.is_terminal else 160)
    out.print(report_renderable(report))
    out.print(note)
    extra = "; resource use limited" if settings.gate.resources.enabled else ""
    out.print(
        "\n[bold]Promotion gate[/] (default thresholds: latency vs the A/A control, every "
        f"slice must agree >= 90% beyond the floor{extra}; details: shadow gate):"
    )
    for result in gates:
        out.print(gate_verdict(result))
    out.print(
        f"full report: {shadow} report --clickhouse-url chdb://{chdb_dir.resolve()}  "
        "(--format html -o report.html for charts)",
        highlight=False,
        soft_wrap=True,
    )


def _report_and_gate(
    warehouse: Any, window: TimeRange, settings: Settings
) -> tuple[Report, list[GateResult]]:
    scope = Scope(warehouse, window, "", False)
    resources = ResourceOptions(
        limits={str(k): v for k, v in settings.resources.limits.items()},
        sample_rates={c.name: c.sample_rate for c in settings.challengers},
        slices_per_metric=2,
    )
    controls = tuple(c.name for c in settings.challengers if c.control)
    report = build_report(
        scope,
        ReportOptions(
            control=controls[0],
            controls=controls,
            slices_per_challenger=3,
            examples_per_challenger=2,
            resources=resources,
        ),
    )
    names = tuple(c.name for c in settings.challengers)
    return report, run_gate(scope, settings.gate, controls, None, names, None, resources)


async def _traffic_with_progress(
    emitter: ShadowEmitter,
    rate: float,
    seconds: float,
    sink: ClickHouseSinkService,
    stop: asyncio.Event,
    keep_running: bool,
    serve: Any = None,
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
                serve=serve,
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
