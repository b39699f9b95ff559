"""Batch experiments on the real broker and chDB: replay, eval file, interrupt and resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from shadowstream.cli.main import cli
from shadowstream.core.config import Settings
from shadowstream.experiments.filters import ItemFilter
from shadowstream.experiments.planning import plan_resume, plan_run
from shadowstream.experiments.runner import BatchRunner, RunOptions
from shadowstream.experiments.sources import CapturedTraffic, EvalFile
from shadowstream.experiments.status import fetch_status
from shadowstream.experiments.store import CANCELLED, COMPLETED, INTERRUPTED, ExperimentStore
from shadowstream.stream_agents.challengers.worker import ChallengerWorkerService
from shadowstream.stream_agents.router import RouterService
from shadowstream.warehouse.client import Warehouse
from tests.support.harness import count, emit_traffic, start_pipeline, wait_for
from tests.support.models import champion_output

ROOT = Path(__file__).resolve().parents[2]


def challenger(name: str, fn: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "callable": f"tests.support.models:{fn}", "concurrency": 64, **extra}


# the batch target never sees live traffic (sample_rate 0 applies to live requests only)
CANDIDATE = challenger("candidate", "different_quarter", sample_rate=0.0)


def scalar(wh: Warehouse, sql: str, **params: Any) -> int:
    return int(wh.query(sql.replace("{db}", wh.database), params).scalar() or 0)


def experiment_rows(wh: Warehouse, experiment: str) -> dict[str, int]:
    """Comparisons of a run: stored once each (FINAL), and every row as inserted (no FINAL)."""

    def query(final: str) -> tuple[Any, ...]:
        return wh.query(
            f"""SELECT count(), countIf(outcome = 'both_answered'), countIf(diverged),
                       countIf(outcome = 'champion_missing'), uniqExact(request_id)
                FROM {wh.database}.comparisons {final}
                WHERE experiment_id = {{e:String}} AND is_late = 0""",
            {"e": experiment},
        ).rows[0]

    n, both, diverged, champion_missing, unique = query("FINAL")
    return {
        "comparisons": int(n),
        "both_answered": int(both),
        "diverged": int(diverged),
        "champion_missing": int(champion_missing),
        "unique_requests": int(unique),
        "rows_inserted": int(query("")[0]),
    }


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOW_")}
    env.update(
        {
            "SHADOW_BROKER_URL": settings.broker_url,
            "SHADOW_CLICKHOUSE_URL": settings.clickhouse_url,
            "SHADOW_CLICKHOUSE_DATABASE": settings.clickhouse_database,
            "SHADOW_TOPIC_PREFIX": settings.topic_prefix,
            "SHADOW_PARTITIONS": str(settings.partitions),
            "SHADOW_JOIN_WINDOW_SECONDS": str(settings.join_window_seconds),
            "SHADOW_CHALLENGERS": json.dumps(
                [c.model_dump(mode="json") for c in settings.challengers]
            ),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def write_eval_file(path: Path, n: int, with_reference: int) -> Path:
    with path.open("wb") as handle:
        for i in range(n):
            record: dict[str, Any] = {
                "id": f"case-{i}",
                "input": {"i": i},
                "endpoint": "/predict",
                "attributes": {"split": "hard" if i % 10 == 0 else "easy"},
            }
            if i < with_reference:
                record["reference"] = champion_output({"i": i})
            handle.write(orjson.dumps(record) + b"\n")
    return path


def test_replay_of_captured_traffic_while_live_traffic_runs(make_settings: Any) -> None:
    settings = make_settings(
        challengers=[challenger("same", "same"), CANDIDATE], write_endpoints=["/write"]
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            since_us = time.time_ns() // 1000 - 1_000_000
            emit_traffic(
                settings, 5_000, attributes=lambda i: {"language": "de" if i % 2 else "en"}
            )
            # captured too, but never shadowed: the router refuses a write endpoint
            emit_traffic(settings, 100, prefix="write", endpoint="/write")
            live = "experiment_id = 'live' AND challenger = 'same'"
            await wait_for(lambda: count(wh, live) >= 5_000, 90, what="5,000 live comparisons")
            await wait_for(
                lambda: (
                    scalar(wh, "SELECT count() FROM {db}.responses FINAL WHERE role = 'champion'")
                    >= 5_100
                ),
                30,
                what="captured champion responses",
            )
            until_us = time.time_ns() // 1000
            store = ExperimentStore(wh)
            source = CapturedTraffic(wh, since_us, until_us, ItemFilter())
            plan = plan_run(
                settings,
                store,
                challengers=["candidate"],
                source=source,
                rate=2_000,
                experiment_id="replay-1",
            )
            assert plan.record.total == 5_100 and not plan.resumed
            # production keeps running while the batch replays
            more_live = threading.Thread(
                target=emit_traffic, args=(settings, 1_000), kwargs={"prefix": "later"}
            )
            started = time.monotonic()
            more_live.start()
            result = await BatchRunner(settings, store, plan).run()
            elapsed = time.monotonic() - started
            more_live.join(timeout=60)
            assert result.status == COMPLETED, result.record.message
            assert "100 not sent to the challenger" in result.record.message
            rows = experiment_rows(wh, "replay-1")
            assert rows == {
                "comparisons": 5_000,
                "both_answered": 5_000,
                "diverged": 1_250,  # the candidate differs on every 4th request
                "champion_missing": 0,
                "unique_requests": 5_000,
                "rows_inserted": 5_000,  # not a single duplicate, even before merges
            }
            db = wh.database
            detail = wh.query(
                f"""SELECT countIf(attributes['language'] = 'de'), countIf(champion_latency_ms = 5),
                       uniqExact(champion_model), countIf(startsWith(request_id, 'replay-1:req-'))
                FROM {db}.comparisons FINAL WHERE experiment_id = 'replay-1'"""
            ).rows[0]
            assert detail == (2_500, 5_000, 1, 5_000)
            # live traffic kept its own counts: 6,000 for `same`, none for the batch target
            await wait_for(lambda: count(wh, live) >= 6_000, 60, what="the later live traffic")
            await asyncio.sleep(1)
            assert count(wh, live) == 6_000
            assert count(wh, "experiment_id = 'live' AND challenger = 'candidate'") == 0
            assert count(wh, "experiment_id = 'replay-1' AND challenger = 'same'") == 0
            (status,) = fetch_status(wh, [store.get("replay-1")])  # type: ignore[list-item]
            counts = status.challengers["candidate"]
            assert (status.status, status.submitted) == (COMPLETED, 5_100)
            assert (counts.answered, counts.compared, counts.failed) == (5_000, 5_000, 0)
            assert counts.not_routed == 100
            # the same run again: nothing to submit, nothing duplicated
            again = plan_run(
                settings,
                store,
                challengers=["candidate"],
                source=source,
                rate=2_000,
                experiment_id="replay-1",
            )
            assert again.resumed
            rerun = await BatchRunner(settings, store, again).run()
            assert rerun.status == COMPLETED
            assert (rerun.progress.already_done, rerun.progress.submitted) == (5_100, 0)
            assert experiment_rows(wh, "replay-1")["rows_inserted"] == 5_000
            # reports filter by the experiment, unchanged
            report = CliRunner().invoke(
                cli,
                ["report", "--experiment", "replay-1", "--format", "json"],
                env=cli_env(settings),
            )
            assert report.exit_code == 0, report.output
            assert "replay-1" in report.output
            print(f"replayed 5,100 captured requests (100 not routed) in {elapsed:.1f}s")
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


def test_eval_file_with_and_without_references(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(challengers=[CANDIDATE])
    path = write_eval_file(tmp_path / "evals.jsonl", 1_000, with_reference=900)

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            store = ExperimentStore(wh)
            plan = plan_run(
                settings,
                store,
                challengers=["candidate"],
                source=EvalFile(path),
                rate=1_000,
                experiment_id="eval-1",
            )
            assert plan.record.total == 1_000
            started = time.monotonic()
            result = await BatchRunner(settings, store, plan).run()
            elapsed = time.monotonic() - started
            assert result.status == COMPLETED, result.record.message
            rows = experiment_rows(wh, "eval-1")
            assert rows == {
                "comparisons": 1_000,
                "both_answered": 900,
                "diverged": 225,  # every 4th of the 900 with a reference
                "champion_missing": 100,  # no reference: compared once the window closed
                "unique_requests": 1_000,
                "rows_inserted": 1_000,
            }
            db = wh.database
            missing = wh.query(
                f"""SELECT countIf(challenger_status = 'ok'), countIf(diverged IS NULL),
                       countIf(challenger_latency_ms >= 20)
                FROM {db}.comparisons FINAL
                WHERE experiment_id = 'eval-1' AND outcome = 'champion_missing'"""
            ).rows[0]
            assert missing == (100, 100, 100)
            hard = scalar(
                wh,
                "SELECT count() FROM {db}.comparisons FINAL WHERE experiment_id = 'eval-1' "
                "AND attributes['split'] = 'hard'",
            )
            assert hard == 100
            status = CliRunner().invoke(
                cli, ["batch", "status", "eval-1", "--format", "json"], env=cli_env(settings)
            )
            assert status.exit_code == 0, status.output
            (run,) = json.loads(status.output)
            assert run["status"] == COMPLETED and run["submitted"] == 1_000
            assert run["challengers"]["candidate"]["compared"] == 1_000
            print(f"1,000-line eval file compared in {elapsed:.1f}s")
        finally:
            await pipeline.stop()

    asyncio.run(scenario())


def test_interrupted_run_resumes_without_duplicates(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(challengers=[CANDIDATE])
    n = 3_000
    path = write_eval_file(tmp_path / "evals.jsonl", n, with_reference=n)
    command = [sys.executable, "-m", "shadowstream.cli", "batch", "run"]
    first = [
        *command,
        "--challenger",
        "candidate",
        "--source",
        str(path),
        "--experiment",
        "resume-1",
        "--rate",
        "250",
    ]

    def start(args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        return subprocess.Popen(args, cwd=ROOT, env=cli_env(settings), stdout=log, stderr=log)

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            wh = pipeline.warehouse
            store = ExperimentStore(wh)

            def submitted() -> int:
                return scalar(
                    wh,
                    "SELECT uniqExact(request_id) FROM {db}.experiment_submissions "
                    "WHERE experiment_id = 'resume-1'",
                )

            # 1. Ctrl-C part way: the run stops cleanly as interrupted
            proc = start(first, "first")
            procs.append(proc)
            await wait_for(lambda: submitted() >= 600, 60, interval=0.2, what="600 submitted")
            proc.send_signal(signal.SIGINT)
            code = await asyncio.to_thread(proc.wait, 30)
            assert code == 130, (tmp_path / "first.log").read_text()
            record = store.get("resume-1")
            assert record is not None and record.status == INTERRUPTED
            interrupted_at = submitted()
            assert 600 <= interrupted_at < n

            # 2. resumed, then killed hard (no chance to record its last submissions)
            proc = start([*command, "--resume", "resume-1"], "second")
            procs.append(proc)
            await wait_for(
                lambda: submitted() >= interrupted_at + 900, 60, interval=0.2, what="more submitted"
            )
            proc.kill()
            await asyncio.to_thread(proc.wait, 30)
            (status,) = fetch_status(wh, [store.get("resume-1")])  # type: ignore[list-item]
            assert status.status == INTERRUPTED  # its process is gone
            assert status.submitted < n

            # 3. resumed again, to the end
            plan = plan_resume(settings, store, "resume-1", rate=1_000)
            assert plan.resumed and plan.record.total == n
            result = await BatchRunner(settings, store, plan, RunOptions()).run()
            assert result.status == COMPLETED, result.record.message
            assert result.progress.already_done > 0
            rows = experiment_rows(wh, "resume-1")
            assert rows["comparisons"] == rows["unique_requests"] == rows["rows_inserted"] == n
            assert rows["both_answered"] == n and rows["diverged"] == n // 4
            (final,) = fetch_status(wh, [store.get("resume-1")])  # type: ignore[list-item]
            assert (final.status, final.submitted) == (COMPLETED, n)
            assert final.challengers["candidate"].compared == n
            # every request reached the challenger exactly once: re-submitted ones were
            # recognised by the join as duplicates
            router = pipeline.service(RouterService)[0]
            worker = pipeline.service(ChallengerWorkerService)[0]
            assert router.counters["fanned_out"] == n
            assert worker.counters["ok"] == n
            print(
                f"interrupted at {interrupted_at}, killed at {status.submitted}, "
                f"re-submitted {result.progress.submitted} in the last resume"
            )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            await pipeline.stop()

    asyncio.run(scenario())


def test_cancelled_run_stops_and_resumes_later(make_settings: Any, tmp_path: Path) -> None:
    # a short late retention: the router forgets closed requests quickly, so a resume
    # soon after the cancel can re-send what the cancel left without a comparison
    settings = make_settings(challengers=[CANDIDATE], late_retention_seconds=3.0)
    path = write_eval_file(tmp_path / "evals.jsonl", 1_500, with_reference=1_500)

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        try:
            wh = pipeline.warehouse
            store = ExperimentStore(wh)
            plan = plan_run(
                settings,
                store,
                challengers=["candidate"],
                source=EvalFile(path),
                rate=150,
                experiment_id="cancel-1",
            )
            runner = BatchRunner(settings, store, plan)
            task = asyncio.ensure_future(runner.run())
            await wait_for(lambda: runner.submitted >= 300, 30, interval=0.1, what="300 sent")
            CliRunner().invoke(cli, ["batch", "cancel", "cancel-1"], env=cli_env(settings))
            result = await asyncio.wait_for(task, 30)
            assert result.status == CANCELLED
            assert result.progress.submitted < 1_000
            await asyncio.sleep(settings.join_window_seconds + 2)
            (status,) = fetch_status(wh, [store.get("cancel-1")])  # type: ignore[list-item]
            assert status.status == CANCELLED
            compared = status.challengers["candidate"].compared
            assert compared <= result.progress.submitted
            await asyncio.sleep(2)
            assert experiment_rows(wh, "cancel-1")["comparisons"] == compared  # it stopped
            # resumed later: the rest is sent, nothing twice
            resumed = plan_resume(settings, store, "cancel-1")
            assert any("was cancelled" in note for note in resumed.notes)
            result = await BatchRunner(settings, store, resumed).run()
            for _ in range(2):
                # documented: a request the router still remembers as closed (skipped at
                # the cancel) is ignored until its late retention passes; resume again
                if result.status == COMPLETED:
                    break
                await asyncio.sleep(settings.late_retention_seconds * 2)
                result = await BatchRunner(
                    settings, store, plan_resume(settings, store, "cancel-1")
                ).run()
            assert result.status == COMPLETED, result.record.message
            rows = experiment_rows(wh, "cancel-1")
            assert rows["comparisons"] == rows["rows_inserted"] == 1_500
            assert pipeline.service(RouterService)[0].counters["fanned_out"] <= 1_500 + 200
        finally:
            await pipeline.stop()

    asyncio.run(scenario())
