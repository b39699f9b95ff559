"""Challenger calls in OpenTelemetry spans of their own, parented to the request's trace (opt-in).

With ``otel_challenger_spans = true`` each call of a challenger runs inside a
span named ``shadow challenger <name>``, whose parent is the span that was
active when the service emitted the request (its ``traceparent``), so the
shadow call shows up in the same trace as the production request. The span
is current while the challenger runs: spans the challenger opens itself, and
HTTP challengers' ``traceparent`` header, hang below it. Spans go to the
process's global tracer provider (configure an exporter as usual), or to the
one passed in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from shadowstream.core.errors import ConfigError
from shadowstream.stream_agents.challengers.base import ChallengeContext


class ChallengerTracer:
    def __init__(self, challenger: str, enabled: bool, tracer_provider: Any = None) -> None:
        self.challenger = challenger
        self.enabled = enabled
        self._tracer: Any = None
        if not enabled:
            return
        try:
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError:
            raise ConfigError(
                "otel_challenger_spans needs OpenTelemetry: pip install 'shadowstream[otel]'"
            ) from None
        self._trace = trace
        self._tracer = trace.get_tracer("shadowstream.challenger", tracer_provider=tracer_provider)
        self._propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def span(self, context: ChallengeContext) -> Iterator[Any]:
        """A span around one call (None when tracing is off); current while it runs."""
        if self._tracer is None:
            yield None
            return
        parent = (
            self._propagator.extract({"traceparent": context.traceparent})
            if context.traceparent
            else None
        )
        attributes = {
            "shadow.challenger": self.challenger,
            "shadow.request_id": context.request_id,
            "shadow.endpoint": context.endpoint,
            "shadow.experiment_id": context.experiment_id,
        }
        with self._tracer.start_as_current_span(
            f"shadow challenger {self.challenger}",
            context=parent,
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    def finish(self, span: Any, status: str, error: str | None) -> None:
        """Record the call's outcome on its span."""
        if span is None:
            return
        span.set_attribute("shadow.status", status)
        if status != "ok":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error or status))
