"""OpenTelemetry: trace ids on SDK events, request ids from the trace, challenger spans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shadowstream.stream_agents.challengers.base import ChallengeContext
from shadowstream.stream_agents.challengers.tracing import ChallengerTracer
from shadowstream.stream_agents.comparison import trace_ids
from tests.support.recording import RecordingEmitter


@pytest.fixture
def tracing() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_events_carry_the_active_span_and_may_take_their_id_from_it(
    tracing: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = tracing
    tracer = provider.get_tracer("test")
    plain, by_trace, by_span = (
        RecordingEmitter(),
        RecordingEmitter(request_id_from_trace="trace"),
        RecordingEmitter(request_id_from_trace="span"),
    )
    off = RecordingEmitter(trace_context=False)
    with tracer.start_as_current_span("handler") as span:
        ctx = span.get_span_context()
        for emitter in (plain, by_trace, by_span, off):
            with emitter.capture("/x", {"a": 1}) as call:
                call.output = {"b": 2}
    with plain.capture("/x", {"a": 1}):  # no span active
        pass
    trace_hex, span_hex = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    expected = f"00-{trace_hex}-{span_hex}-{int(ctx.trace_flags):02x}"
    first, outside = plain.requests()
    assert first["traceparent"] == expected and outside["traceparent"] is None
    assert first["request_id"] not in (trace_hex, f"{trace_hex}-{span_hex}")
    assert by_trace.requests()[0]["request_id"] == trace_hex
    assert by_trace.responses()[0]["request_id"] == trace_hex
    assert by_span.requests()[0]["request_id"] == f"{trace_hex}-{span_hex}"
    assert off.requests()[0]["traceparent"] is None
    assert trace_ids(expected) == (trace_hex, span_hex)
    assert trace_ids("garbage") == (None, None) and trace_ids(None) == (None, None)
    for emitter in (plain, by_trace, by_span, off):
        emitter.close(0.1)


def test_challenger_spans_are_children_of_the_request_span(
    tracing: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = tracing
    traced = ChallengerTracer("fast", True, tracer_provider=provider)
    parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    context = ChallengeContext("r-1", "/v1/x", {}, "live", None, parent)
    with traced.span(context) as span:
        traced.finish(span, "ok", None)
    with traced.span(ChallengeContext("r-2", "/v1/x")) as span:  # no trace: a root span
        traced.finish(span, "timeout", "no answer within 1s")
    child, root = exporter.get_finished_spans()
    assert child.name == "shadow challenger fast"
    assert f"{child.context.trace_id:032x}" == "ab" * 16
    assert child.parent is not None and f"{child.parent.span_id:016x}" == "cd" * 8
    assert child.attributes["shadow.request_id"] == "r-1"
    assert child.attributes["shadow.status"] == "ok"
    assert root.parent is None and root.status.status_code == StatusCode.ERROR
    off = ChallengerTracer("fast", False)
    with off.span(context) as span:
        assert span is None
