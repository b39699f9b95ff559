"""The active OpenTelemetry span, if the service traces: read without requiring OpenTelemetry.

``opentelemetry-api`` is imported lazily and only if it is installed; without
it every function here returns None and costs one attribute check.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

RequestIdFromTrace = Literal["trace", "span"]

_trace: Any = None
_checked = False


def _otel_trace() -> Any:
    global _trace, _checked
    if not _checked:
        _checked = True
        if importlib.util.find_spec("opentelemetry") is not None:
            try:
                from opentelemetry import trace

                _trace = trace
            except ImportError:  # a broken install: behave as without it
                _trace = None
    return _trace


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span (``00-<trace>-<span>-<flags>``), or None."""
    trace = _otel_trace()
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def request_id_from(traceparent: str | None, mode: RequestIdFromTrace | None) -> str | None:
    """A request id taken from the trace: its trace id, or trace id + span id (unique per span).

    ``"trace"`` suits one shadowed call per trace (a request id you can paste
    into the tracing UI); ``"span"`` stays unique when one trace makes several.
    """
    if mode is None or traceparent is None:
        return None
    trace_id, span_id = traceparent[3:35], traceparent[36:52]
    return trace_id if mode == "trace" else f"{trace_id}-{span_id}"
