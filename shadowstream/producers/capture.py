"""Capture a champion call: latency, status, output and usage, then emit it.

The request event goes out when the block starts (so challengers can start
while the champion is still working); the response when it ends. Exceptions
raised by the *champion* propagate unchanged (they are recorded as
status=error); the SDK itself never raises.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shadowstream.producers.emitter import ShadowEmitter


class ChampionCall:
    """Returned by :meth:`ShadowEmitter.capture`; set ``output`` inside the block."""

    def __init__(
        self,
        emitter: ShadowEmitter,
        *,
        endpoint: str,
        payload: Any,
        request_id: str,
        attributes: Mapping[str, str] | None,
        model: str | None,
        traceparent: str | None = None,
    ) -> None:
        self._emitter = emitter
        self.traceparent = traceparent
        self.endpoint = endpoint
        self.payload = payload
        self.request_id = request_id
        self.attributes = attributes
        self.model = model
        self.output: Any = None
        self.status: str | None = None  # None: decided on exit (ok / error)
        self.tool_trace: Any = None
        self._usage: dict[str, Any] = {}
        self._start = 0.0

    def usage(
        self,
        *,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        tool_calls: int | None = None,
        cost: float | None = None,
    ) -> None:
        """Record what the champion call consumed (any subset)."""
        for key, value in (
            ("tokens_in", tokens_in),
            ("tokens_out", tokens_out),
            ("tool_calls", tool_calls),
            ("cost", cost),
        ):
            if value is not None:
                self._usage[key] = value

    def __enter__(self) -> ChampionCall:
        self._emitter.emit_request(
            self.request_id,
            self.endpoint,
            self.payload,
            attributes=self.attributes,
            champion_model=self.model,
            traceparent=self.traceparent,
        )
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        latency_ms = (time.perf_counter() - self._start) * 1000.0
        if exc is not None:
            status = "timeout" if isinstance(exc, TimeoutError) else "error"
            error: str | None = f"{type(exc).__name__}: {exc}"
            output = None
        else:
            status = self.status or "ok"
            error = None
            output = self.output
        self._emitter.emit_response(
            self.request_id,
            output,
            latency_ms,
            status=status,
            error=error,
            model=self.model,
            tool_trace=self.tool_trace,
            **self._usage,
        )
        # returning None: the champion's own exception, if any, propagates
