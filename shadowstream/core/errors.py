"""The one exception hierarchy every Shadowstream package raises from."""

from __future__ import annotations


class ShadowstreamError(Exception):
    """Root of every error Shadowstream raises on purpose."""


class ConfigError(ShadowstreamError):
    """The configuration (file or environment) is invalid."""


class SchemaError(ShadowstreamError):
    """An event could not be encoded or decoded."""


class UnknownSchemaError(SchemaError):
    """A single-object encoded event names a writer schema nobody registered."""

    reason = "unknown_schema"

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        super().__init__(
            f"unknown Avro writer schema fingerprint {fingerprint.hex()} "
            "(no registered schema has it; is the reader older than the writer?)"
        )


class IncompatibleSchemaError(SchemaError):
    """A writer schema that a reader cannot resolve, or that may not be published.

    ``problems`` lists each rule broken (see shadowstream.schemas.compat).
    """

    reason = "incompatible_schema"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message)


class MalformedEventError(SchemaError):
    """Bytes that are not a valid single-object encoded Avro event.

    ``reason`` is a short machine-readable tag (used for dead-letter counters):
    ``not_avro``, ``truncated``, ``wrong_event_type`` or ``invalid``.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__(message)


class NotFoundError(ShadowstreamError):
    """A name given by the user (challenger, experiment) matches nothing; the message
    names what exists."""


class BrokerError(ShadowstreamError):
    """The Kafka broker is unreachable or refused an operation."""


class BrokerUnavailableError(BrokerError):
    """Kafka did not answer (down, restarting, overloaded): the same call may succeed later."""


class GroupMembershipLostError(BrokerError):
    """This consumer no longer owns its partitions (fenced, session expired, new generation,
    or a broker that lost its data): its uncommitted work belongs to the next owner."""


class PortInUseError(BrokerError):
    """The port asked for (``shadow broker --port``) is taken: a usage error."""

    exit_code = 3


class BrokerAuthError(BrokerError):
    """Kafka refused this client: wrong or missing SASL credentials, or a TLS mismatch."""

    exit_code = 3


class WarehouseError(ShadowstreamError):
    """ClickHouse (server or embedded chDB) failed or is unavailable."""


class WarehouseUnavailableError(WarehouseError):
    """ClickHouse could not be reached; the operation may succeed later."""


class WarehouseRejectedError(WarehouseError):
    """ClickHouse refused the rows of an insert (a value it cannot parse or convert),
    not the request: the same rows will be refused again, the others would not be."""

    def __init__(self, message: str, code: int) -> None:
        self.code = code
        super().__init__(message)


class ChallengerError(ShadowstreamError):
    """A challenger adapter could not be loaded or configured."""


class GateError(ShadowstreamError):
    """A promotion gate could not be evaluated."""


class ExperimentError(ShadowstreamError):
    """A batch experiment cannot be planned, submitted, resumed or found."""
