"""A FastAPI service served over HTTP by uvicorn, traced with OpenTelemetry, through the real pipeline.

One scenario checks the middleware (route templates, JSON bodies as payloads
and outputs, skipped streams and text), the decorator on a pydantic endpoint,
trace ids stored with requests and comparisons, and challenger spans parented
to the service's server spans (OpenTelemetry SDK, in-memory exporter).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from shadowstream.analytics.html import render_html
from shadowstream.analytics.queries import Scope, TimeRange
from shadowstream.analytics.report import ReportOptions, build_report
from shadowstream.pipeline.embedded import free_port
from shadowstream.producers import HttpShadowStats, ShadowEmitter, ShadowMiddleware
from tests.support.harness import count, start_pipeline, wait_for
from tests.support.otel import global_tracing
from tests.support.web_app import ServerThread, build_service


def stored_requests(warehouse: Any) -> int:
    sql = f"SELECT count() FROM {warehouse.database}.requests FINAL"
    return int(warehouse.query(sql).scalar() or 0)


TEXTS = ["refund please", "Rechnung falsch", "hello there", "invoice missing for order 7"]


def send_traffic(url: str) -> list[tuple[str, str, Any]]:
    """(endpoint kind, request body text, response JSON) per request."""
    sent: list[tuple[str, str, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(30):
            body = json.dumps({"text": TEXTS[i % 4], "lang": "de" if i % 3 == 0 else "en"})
            body = body.replace(", ", ",  ") if i % 2 else body  # recorded byte for byte
            response = client.post(
                f"/v1/tickets/{i}/classify",
                content=body,
                headers={"content-type": "application/json", "x-tier": "pro" if i % 2 else "free"},
            )
            sent.append(("classify", body, response.json()))
        for i in range(6):
            body = json.dumps({"text": f"{TEXTS[i % 4]} and more words", "lang": "en"})
            response = client.post(
                "/v1/summarize", content=body, headers={"content-type": "application/json"}
            )
            sent.append(("summarize", body, response.json()))
        for i in range(3):
            assert client.get(f"/v1/tickets/{i}/stream").json() == {"ticket": i}
            assert client.get(f"/v1/tickets/{i}/text").text == f"ticket {i}"
    return sent


def test_a_traced_fastapi_service_through_the_pipeline(make_settings: Any) -> None:
    provider, exporter = global_tracing()
    exporter.clear()
    settings = make_settings(
        otel_challenger_spans=True,
        challengers=[
            {
                "name": "triage",
                "callable": "tests.support.models:triage",
                "endpoints": ["/v1/tickets/*"],
            },
            {
                "name": "counter",
                "callable": "tests.support.models:count_words",
                "endpoints": ["/v1/summarize"],
            },
        ],
    )

    async def scenario() -> None:
        pipeline = await start_pipeline(settings)
        emitter = ShadowEmitter(
            settings.broker_url,
            service="helpdesk",
            topic_prefix=settings.topic_prefix,
            request_id_from_trace="trace",
        )
        try:
            app = build_service(emitter)
            stats = HttpShadowStats()
            app.add_middleware(
                ShadowMiddleware,
                emitter=emitter,
                routes=["/v1/tickets/*"],
                attributes_from_headers={"x-tier": "tier"},
                stats=stats,
            )
            FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
            with ServerThread(app, free_port()) as server:
                sent = await asyncio.to_thread(send_traffic, server.url)
            assert emitter.flush(30) == 0
            wh = pipeline.warehouse
            await wait_for(lambda: count(wh) >= 36, 120, what="36 comparisons")
            # the sink stores a batch's comparisons before its raw events
            await wait_for(
                lambda: stored_requests(wh) >= 36, 60, what="36 requests stored by the sink"
            )
            assert (stats.shadowed, stats.skipped_streaming, stats.skipped_non_json) == (30, 3, 3)
            db = wh.database

            requests = wh.query(
                f"SELECT request_id, endpoint, payload, attributes, trace_id, span_id "
                f"FROM {db}.requests FINAL"
            ).rows
            assert len(requests) == 36
            by_endpoint = Counter(r[1] for r in requests)
            assert by_endpoint == {"/v1/tickets/{ticket_id}/classify": 30, "/v1/summarize": 6}
            classify_bodies = sorted(body for kind, body, _ in sent if kind == "classify")
            assert sorted(r[2] for r in requests if r[1].endswith("classify")) == classify_bodies
            summarize_bodies = sorted(
                (json.loads(b) for k, b, _ in sent if k == "summarize"), key=str
            )
            assert (
                sorted(
                    (json.loads(r[2]) for r in requests if r[1] == "/v1/summarize"),
                    key=str,
                )
                == summarize_bodies
            )
            assert {r[3].get("tier") for r in requests if r[1].endswith("classify")} == {
                "pro",
                "free",
            }
            # the request id is the trace id (request_id_from_trace), stored with its span
            assert all(r[0] == r[4] and len(r[4]) == 32 and len(r[5]) == 16 for r in requests)
            span_of = {r[0]: r[5] for r in requests}

            comparisons = wh.query(
                f"SELECT challenger, request_id, diverged, challenger_status, trace_id, span_id, "
                f"diff_paths FROM {db}.comparisons FINAL WHERE is_late = 0"
            ).rows
            assert len(comparisons) == 36
            assert all(c[3] == "ok" for c in comparisons)
            assert all(c[4] == c[1] and c[5] == span_of[c[1]] for c in comparisons)
            german = sum(1 for k, b, _ in sent if k == "classify" and json.loads(b)["lang"] == "de")
            diverged = Counter((c[0], c[2]) for c in comparisons)
            assert diverged == {
                ("triage", True): german,
                ("triage", False): 30 - german,
                ("counter", False): 6,
            }
            assert {p for c in comparisons for p in c[6]} == {"$.label"}

            spans = [
                s for s in exporter.get_finished_spans() if s.name.startswith("shadow challenger")
            ]
            assert len(spans) == 36
            for span in spans:
                rid = span.attributes["shadow.request_id"]
                assert f"{span.context.trace_id:032x}" == rid
                assert span.parent is not None and f"{span.parent.span_id:016x}" == span_of[rid]
            server_spans = {f"{s.context.span_id:016x}" for s in exporter.get_finished_spans()}
            assert set(span_of.values()) <= server_spans  # parents are the service's own spans
            # a divergent example in the report links to its trace
            report = build_report(
                Scope(wh, TimeRange()),
                ReportOptions(trace_url="https://traces.example/trace/{trace_id}"),
            )
            examples = [e for e in report.examples if e.challenger == "triage"]
            assert examples and all(e.kind == "diverged" for e in examples)
            assert all(e.trace_id == e.request_id for e in examples)
            assert all(
                e.trace_url == f"https://traces.example/trace/{e.trace_id}" for e in examples
            )
            assert f"href='{examples[0].trace_url}'" in render_html(report)
            metrics = pipeline.metrics()
            assert metrics["router"]["deadletters"] == {} and metrics["sink"]["deadletters"] == {}
        finally:
            emitter.close(10)
            await pipeline.stop()

    asyncio.run(scenario())
