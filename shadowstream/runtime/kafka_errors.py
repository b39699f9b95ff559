"""What a Kafka error means for an agent: retry later, rejoin the group, or give up.

librdkafka reports group, coordinator and connection trouble as error codes on
commits, delivery reports and the error callback. Agents never exit for the
first two kinds:

* *membership*: this consumer no longer owns its partitions (session expired
  during a stall, a newer generation, a rebalance in progress). Its
  uncommitted work belongs to the next owner: drop it, rejoin, continue.
* *unavailable*: the broker or the group coordinator did not answer (down,
  restarting, moving). Nothing is lost; the same call is retried later.

Only a configuration problem that no retry can fix (for example two processes
sharing one ``group.instance.id``, or missing ACLs) is *fatal*.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError

from shadowstream.core.errors import (
    BrokerError,
    BrokerUnavailableError,
    ConfigError,
    GroupMembershipLostError,
)

MEMBERSHIP_CODES = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._MAX_POLL_EXCEEDED,
        KafkaError._STATE,  # committing while not (or no longer) in the group
    }
)

FATAL_CODES = frozenset(
    {
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._FENCED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    }
)

# Codes that say "the broker is not reachable" when they come from the error callback.
# Everything else there is logged once and left to librdkafka, which retries on its own.
CONNECTION_CODES = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})


class FatalKafkaError(BrokerError, ConfigError):
    """A Kafka error that a restart cannot fix: the deployment's configuration must change."""


def error_name(err: KafkaError) -> str:
    name = err.name()
    return str(name) if name else str(err.code())


def classify(err: KafkaError, what: str) -> BrokerError:
    """The exception an agent acts on for a Kafka error met while doing ``what``."""
    code = err.code()
    text = f"{what}: {error_name(err)} ({err.str()})"
    if code in MEMBERSHIP_CODES:
        return GroupMembershipLostError(text)
    if code in FATAL_CODES:
        return _fatal(code, text)
    # coordinator moving or down, timeouts, transport, unknown topic during a broker
    # restart, and anything unexpected: none of it is fixed by exiting
    return BrokerUnavailableError(text)


def _fatal(code: int, text: str) -> BrokerError:
    if code in (KafkaError.FENCED_INSTANCE_ID, KafkaError._FENCED):
        return FatalKafkaError(
            f"{text}: another process uses the same group.instance.id "
            "(kafka_options / static membership must be unique per process)"
        )
    return FatalKafkaError(f"{text}: check the Kafka ACLs of this principal")


class ErrorLog:
    """librdkafka errors, logged once per kind and then at most every ``interval_s``:
    during an outage the same connection error arrives many times a second."""

    def __init__(
        self,
        logger: logging.Logger,
        name: str,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._name = name
        self._interval = interval_s
        self._clock = clock
        self._logged: dict[int, tuple[float, int]] = {}  # code -> (last logged, suppressed)
        self.count = 0
        self.last: str | None = None

    def record(self, err: KafkaError, what: str = "kafka") -> None:
        now = self._clock()
        code = err.code()
        self.count += 1
        self.last = f"{what}: {err.str()}"
        logged_at, suppressed = self._logged.get(code, (None, 0))
        if logged_at is not None and now - logged_at < self._interval:
            self._logged[code] = (logged_at, suppressed + 1)
            return
        self._logged[code] = (now, 0)
        more = f" ({suppressed} more like it since)" if suppressed else ""
        level = logging.WARNING if code in CONNECTION_CODES else logging.ERROR
        self._log.log(level, "%s: %s%s", self._name, self.last, more)
