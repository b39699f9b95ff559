"""What the SDK's emitter counts: emitted, delivered, and every kind of drop."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EmitterStats:
    """Counters; read them with :meth:`ShadowEmitter.stats`."""

    emitted: int = 0  # accepted into the send queue
    delivered: int = 0  # acknowledged by the broker
    dropped_queue_full: int = 0
    dropped_undeliverable: int = 0
    dropped_invalid: int = 0
    dropped_closed: int = 0
    # the redaction stage failed (a hook raised, say): the event is dropped, never sent raw
    dropped_redaction: int = 0
    # values redacted so far, per rule ("hash:$.customer.id", "detector:email", "hook:scrub")
    redacted: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue_full
            + self.dropped_undeliverable
            + self.dropped_invalid
            + self.dropped_closed
            + self.dropped_redaction
        )
