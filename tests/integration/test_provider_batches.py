"""Batch runs through provider batch APIs, on the real pipeline, with the official clients.

No provider is reachable from here: tests/support/llm_server.py serves the
OpenAI Files + Batches and Anthropic Message Batches endpoints as their API
references describe them, on loopback, and the run drives it with the
``openai`` and ``anthropic`` libraries. Planted: requests whose text contains
FAIL are answered with a 400 (a batch that partly fails); the second OpenAI
batch and the second Anthropic batch expire part way.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.cli.main import cli
from shadowstream.core.config import Settings
from shadowstream.experiments.ids import request_id
from shadowstream.experiments.planning import plan_resume, plan_run
from shadowstream.experiments.provider_store import CREATING, ChunkRecord, ProviderBatchStore
from shadowstream.experiments.providers import custom_id
from shadowstream.experiments.providers.base import BatchState
from shadowstream.experiments.providers.mapping import RequestMapper
from shadowstream.experiments.providers.openai_batch import OpenAIBatchProvider
from shadowstream.experiments.runner import BatchRunner, RunOptions
from shadowstream.experiments.sources import EvalFile
from shadowstream.experiments.store import CANCELLED, COMPLETED, INTERRUPTED, ExperimentStore
from shadowstream.producers import ShadowEmitter
from shadowstream.warehouse.client import Warehouse
from tests.integration.test_batch import ROOT, cli_env
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.llm_server import LLMServer

KEY_ENV = "PROVIDER_TEST_API_KEY"
N = 20
FAILING = {5, 13}  # their text contains FAIL: the provider answers 400


def question(i: int) -> str:
    return f"question {i}" + (" FAIL" if i in FAILING else "")


def write_evals(path: Path, n: int = N) -> Path:
    with path.open("wb") as handle:
        for i in range(n):
            record = {"id": f"q{i}", "input": question(i), "reference": f"answer: {question(i)}"}
            handle.write(orjson.dumps(record) + b"\n")
    return path


def llm_challengers(server: LLMServer) -> list[dict[str, Any]]:
    live_chat = {  # the same model called live, through the chat endpoint
        "url": f"{server.openai_url}/chat/completions",
        "headers_from_env": {"Authorization": f"Bearer ${{{KEY_ENV}}}"},
        "request_body": {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "$payload"}],
        },
        "output_path": "choices.0.message.content",
        "tokens_in_path": "usage.prompt_tokens",
        "tokens_out_path": "usage.completion_tokens",
    }
    return [
        {
            "name": "gpt",
            "model": "gpt-test",
            "http": live_chat,
            "cost_per_1k_tokens_in": 1.0,  # live prices; the batch price is half
            "cost_per_1k_tokens_out": 2.0,
            "batch_api": {
                "provider": "openai",
                "base_url": server.openai_url,
                "api_key_env": KEY_ENV,
                "max_requests_per_batch": 8,
                "poll_interval_seconds": 0.2,
            },
        },
        {
            "name": "claude",  # batch only: no live adapter, never sent live traffic
            "model": "claude-test",
            "cost_per_1k_tokens_in": 3.0,
            "cost_per_1k_tokens_out": 15.0,
            "batch_api": {
                "provider": "anthropic",
                "base_url": server.url,
                "api_key_env": KEY_ENV,
                "max_requests_per_batch": 10,
                "poll_interval_seconds": 0.2,
                "cost_per_1k_tokens_in": 1.5,
                "cost_per_1k_tokens_out": 7.5,
            },
        },
    ]


def statuses(wh: Warehouse, experiment: str, challenger: str) -> dict[str, tuple[Any, ...]]:
    rows = wh.query(
        f"""SELECT request_id, challenger_status, challenger_error, diverged, challenger_cost,
                   challenger_tokens_in, challenger_tokens_out
        FROM {wh.database}.comparisons FINAL
        WHERE experiment_id = {{e:String}} AND challenger = {{c:String}} AND is_late = 0""",
        {"e": experiment, "c": challenger},
    ).rows
    return {str(r[0]).split(":", 1)[1]: tuple(r[1:]) for r in rows}


def emit_live(settings: Settings, n: int) -> None:
    emitter = ShadowEmitter(settings.broker_url, service="qa", topic_prefix=settings.topic_prefix)
    for i in range(n):
        emitter.emit_request(f"live-{i}", "eval", f"question {i}")
        emitter.emit_response(f"live-{i}", f"answer: question {i}", 300.0)
    assert emitter.flush(30) == 0
    emitter.close()


@pytest.mark.timeout(900)
def test_runs_through_openai_and_anthropic_batch_apis(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LLMServer() as server:
        monkeypatch.setenv(KEY_ENV, server.api_key)
        server.openai.expire_after = {2: 3}  # the 2nd OpenAI batch: 3 answered, the rest expire
        server.anthropic.expire_after = {2: 8}  # the 2nd Anthropic batch: 2 expire
        settings = make_settings(challengers=llm_challengers(server))
        evals = write_evals(tmp_path / "evals.jsonl")

        async def scenario() -> None:
            pipeline = await start_pipeline(settings)
            wh = pipeline.warehouse
            store = ExperimentStore(wh)
            chunks = ProviderBatchStore(wh)
            try:
                # live traffic: only the challenger with a live adapter is called live
                emit_live(settings, 6)
                await wait_for(lambda: count(wh, "experiment_id = 'live'") >= 6, 120, what="live")
                assert count(wh, "experiment_id = 'live' AND challenger = 'claude'") == 0

                # 1. --no-wait: the provider batches are created, the run stops there
                plan = plan_run(
                    settings,
                    store,
                    challengers=["gpt", "claude"],
                    source=EvalFile(evals),
                    rate=1_000,
                    experiment_id="prov-1",
                )
                first = await BatchRunner(settings, store, plan, RunOptions(wait=False)).run()
                assert first.status == INTERRUPTED and "--resume prov-1" in first.record.message
                stored = chunks.chunks("prov-1")
                assert [(c.challenger, c.requests) for c in stored] == [
                    ("claude", 10),
                    ("claude", 10),
                    ("gpt", 8),
                    ("gpt", 8),
                    ("gpt", 4),
                ]
                assert all(c.batch_id for c in stored)
                assert (server.openai.created, server.anthropic.created) == (3, 2)

                # 2. resumed: polls the stored batches (pays for nothing twice), compares
                resumed = plan_resume(settings, store, "prov-1")
                result = await BatchRunner(settings, store, resumed).run()
                assert result.status == COMPLETED, result.record.message
                assert (server.openai.created, server.anthropic.created) == (3, 2)
                check_results(wh)

                # status shows every provider batch with its state and counts
                shown = CliRunner().invoke(
                    cli, ["batch", "status", "prov-1", "--format", "json"], env=cli_env(settings)
                )
                assert shown.exit_code == 0, shown.output
                batches = json.loads(shown.output)[0]["provider_batches"]
                assert sorted(b["status"] for b in batches) == [
                    "completed",
                    "completed",
                    "ended",
                    "ended",
                    "expired",
                ]
                expired = next(b for b in batches if b["status"] == "expired")
                assert (expired["succeeded"], expired["errored"]) == (3, 5)

                # the report: cost per 1,000 requests, batch run next to live
                report = build_report(
                    Scope(wh, TimeRange(), "prov-1"),
                    ReportOptions(live_prices={"claude": (3.0, 15.0)}),
                )
                costs = {c.challenger: c for c in report.costs}
                assert costs["gpt"].live_basis == "measured live" and costs["gpt"].live_answers == 6
                assert costs["claude"].live_basis == "live list price"
                for c in costs.values():
                    assert c.saving is not None and abs(c.saving - 0.5) < 0.02, c
            finally:
                await pipeline.stop()

        asyncio.run(scenario())


def check_results(wh: Warehouse) -> None:
    gpt = statuses(wh, "prov-1", "gpt")
    assert len(gpt) == N
    expired = {f"q{i}" for i in range(11, 16)}  # batch 2 = items 8..15, 3 answered
    assert {k for k, v in gpt.items() if v[0] == "timeout"} == expired
    assert all("batch_expired" in gpt[k][1] for k in expired)
    assert {k for k, v in gpt.items() if v[0] == "error"} == {"q5"}
    assert "planted failure" in gpt["q5"][1]
    ok = {k: v for k, v in gpt.items() if v[0] == "ok"}
    assert len(ok) == N - 6 and not any(v[2] for v in ok.values())  # answers = references
    # tokens from the provider's usage, cost at the batch price (half the live one)
    _, _, _, cost, tokens_in, tokens_out = gpt["q0"]
    assert (tokens_in, tokens_out) == (2, 3)  # "question 0" -> "answer: question 0"
    assert cost == pytest.approx((2 * 0.5 + 3 * 1.0) / 1000)
    claude = statuses(wh, "prov-1", "claude")
    assert {k for k, v in claude.items() if v[0] == "error"} == {"q5", "q13"}
    assert {k for k, v in claude.items() if v[0] == "timeout"} == {"q18", "q19"}
    assert claude["q0"][3] == pytest.approx((2 * 1.5 + 3 * 7.5) / 1000)


def create_orphan(settings: Settings, chunks: ProviderBatchStore, evals: Path) -> str:
    """What a run killed between "creating" and storing the id leaves behind."""
    gpt = settings.challenger("gpt")
    provider, mapper = OpenAIBatchProvider(gpt), RequestMapper(gpt)
    items = next(EvalFile(evals).pages(8))[:8]
    lines = []
    for item in items:
        rid = request_id("orphan-1", item.source_id)
        lines.append(provider.line(custom_id(rid), mapper.body(item, rid, "orphan-1")))
    chunks.save(
        ChunkRecord(
            "orphan-1", "gpt", 0, "openai", 0, 8, 8, BatchState("", CREATING, False, total=8)
        )
    )
    metadata = {"shadow_experiment": "orphan-1", "shadow_challenger": "gpt", "shadow_chunk": "0"}
    return provider.submit(lines, metadata).batch_id


@pytest.mark.timeout(600)
def test_a_killed_run_resumes_its_batches_and_cancel_cancels_them(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LLMServer() as server:
        monkeypatch.setenv(KEY_ENV, server.api_key)
        server.openai.per_poll = server.anthropic.per_poll = 1  # slow batches: one per poll
        settings = make_settings(challengers=llm_challengers(server))
        evals = write_evals(tmp_path / "evals.jsonl")
        command = [sys.executable, "-m", "shadowstream.cli", "batch", "run"]
        args = ["--challenger", "gpt", "--challenger", "claude", "--source", str(evals)]

        async def scenario() -> None:
            pipeline = await start_pipeline(settings)
            wh = pipeline.warehouse
            store, chunks = ExperimentStore(wh), ProviderBatchStore(wh)
            log = (tmp_path / "run.log").open("wb")
            proc = subprocess.Popen(
                [*command, *args, "--experiment", "kill-1"],
                cwd=ROOT,
                env=cli_env(settings),
                stdout=log,
                stderr=log,
            )
            try:
                # killed hard while its provider batches run
                await wait_for(
                    lambda: len([c for c in chunks.chunks("kill-1") if c.batch_id]) == 5,
                    120,
                    interval=0.2,
                    what="5 provider batches stored",
                )
                proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(proc.wait, 30)
                assert (server.openai.created, server.anthropic.created) == (3, 2)
                server.openai.per_poll = server.anthropic.per_poll = 1_000
                result = await BatchRunner(
                    settings, store, plan_resume(settings, store, "kill-1")
                ).run()
                assert result.status == COMPLETED, result.record.message
                assert (server.openai.created, server.anthropic.created) == (3, 2)
                assert count(wh, "experiment_id = 'kill-1'") == 2 * N

                # cancel: the run's provider batches are cancelled at the provider
                server.openai.per_poll = server.anthropic.per_poll = 0  # nothing finishes
                plan = plan_run(
                    settings,
                    store,
                    challengers=["gpt", "claude"],
                    source=EvalFile(evals),
                    rate=1_000,
                    experiment_id="cancel-1",
                )
                await BatchRunner(settings, store, plan, RunOptions(wait=False)).run()
                done = CliRunner().invoke(
                    cli, ["batch", "cancel", "cancel-1"], env=cli_env(settings)
                )
                assert done.exit_code == 0, done.output
                assert done.output.count("cancelling at the provider") == 3
                assert done.output.count("canceling at the provider") == 2
                record = store.get("cancel-1")
                assert record is not None and record.status == CANCELLED
                refreshed = CliRunner().invoke(
                    cli,
                    ["batch", "status", "cancel-1", "--refresh", "--format", "json"],
                    env=cli_env(settings),
                )
                states = {b["status"] for b in json.loads(refreshed.output)[0]["provider_batches"]}
                assert states == {"cancelled", "ended"}

                # killed inside the create call: the batch exists at OpenAI, the stored chunk
                # has no id yet; the restarted run finds it by its metadata
                server.openai.per_poll = 1_000
                orphan = create_orphan(settings, chunks, evals)
                before = server.openai.created
                plan = plan_run(
                    settings,
                    store,
                    challengers=["gpt"],
                    source=EvalFile(evals),
                    rate=1_000,
                    experiment_id="orphan-1",
                )
                result = await BatchRunner(settings, store, plan).run()
                assert result.status == COMPLETED, result.record.message
                assert server.openai.created == before + 2  # items 8-15 and 16-19 only
                assert chunks.chunks("orphan-1")[0].batch_id == orphan
                answers = statuses(wh, "orphan-1", "gpt")
                assert {k for k, v in answers.items() if v[0] != "ok"} == {"q5", "q13"}
            finally:
                if proc.poll() is None:
                    proc.kill()
                await pipeline.stop()

        asyncio.run(scenario())
