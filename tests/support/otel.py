"""One OpenTelemetry SDK tracer provider for the test process, exporting to memory."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_state: tuple[TracerProvider, InMemorySpanExporter] | None = None


def global_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    """The process's global provider (set once: OpenTelemetry allows no second one)."""
    global _state
    if _state is None:
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _state = (provider, exporter)
    return _state
