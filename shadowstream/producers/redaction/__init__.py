"""PII redaction in the SDK: runs on the calling side, before any byte leaves the service.

See docs/security.md. Standard library only (the SDK's base install stays
confluent-kafka + fastavro)::

    from shadowstream.producers import ShadowEmitter
    from shadowstream.producers.redaction import PathRule, RedactionPolicy

    emitter = ShadowEmitter(
        "kafka://kafka:9092",
        service="support",
        redaction=RedactionPolicy(
            rules=[PathRule("$.customer.id", "hash"), PathRule("*.password", "drop")],
            detectors=["email", "phone", "card", "iban", "ip", "credential"],
        ),
    )
"""

from shadowstream.producers.redaction.detectors import ALIASES, DETECTORS, Detector
from shadowstream.producers.redaction.engine import (
    Redactor,
    Tally,
    build_redactor,
    scrub_answer,
    scrub_values,
)
from shadowstream.producers.redaction.policy import (
    ACTIONS,
    FIELDS,
    DetectorRule,
    PathRule,
    RedactionPolicy,
)

__all__ = [
    "ACTIONS",
    "ALIASES",
    "DETECTORS",
    "FIELDS",
    "Detector",
    "DetectorRule",
    "PathRule",
    "RedactionPolicy",
    "Redactor",
    "Tally",
    "build_redactor",
    "scrub_answer",
    "scrub_values",
]
