"""The agents' consumer: batches from asyncio, a group membership it never gives up on.

The blocking ``consume()`` runs on a dedicated thread (librdkafka releases the
GIL while it waits), so the agent's event loop stays free. Offsets are never
auto-committed: every agent commits explicitly, only for work whose outputs
the producer has confirmed delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from shadowstream.core.errors import BrokerError, BrokerUnavailableError, GroupMembershipLostError
from shadowstream.runtime.kafka_errors import CONNECTION_CODES, ErrorLog, classify
from shadowstream.runtime.kafka_stats import STATISTICS_INTERVAL_MS, ClientStatistics
from shadowstream.runtime.membership import Membership

log = logging.getLogger(__name__)

AssignCallback = Callable[[list[TopicPartition]], None]


class BatchConsumer:
    """A confluent-kafka consumer driven from asyncio, one batch per call.

    It never exits for the group or the broker: a lost membership is reported
    by ``on_lost`` (or by :meth:`fence` after a failed commit) and the consumer
    rejoins, and commits wait at most ``commit_timeout_s`` for the coordinator.
    ``membership`` says what it owns and since when (for readiness).
    """

    def __init__(
        self,
        conf: dict[str, Any],
        topics: Sequence[str],
        *,
        on_assign: AssignCallback | None = None,
        on_revoke: AssignCallback | None = None,
        on_lost: AssignCallback | None = None,
        name: str = "consumer",
        commit_timeout_s: float = 10.0,
        admin_conf: dict[str, Any] | None = None,
    ) -> None:
        conf = dict(conf)
        conf.setdefault("error_cb", self._on_error)
        conf.setdefault("logger", logging.getLogger(f"shadowstream.librdkafka.{name}"))
        session_s = float(conf.get("session.timeout.ms", 10_000)) / 1000
        self.name = name
        self.membership = Membership(name, rejoin_after_s=max(2.0, 2 * session_s))
        self.commit_timeout_s = commit_timeout_s
        # lag, brokers and group state for /metrics, reported from consume() itself
        self.statistics = ClientStatistics(str(conf.get("group.id", name)))
        conf.setdefault("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        conf.setdefault("stats_cb", self.statistics.update)
        self._consumer = Consumer(conf)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kafka-{name}")
        # the commit waits for the coordinator on its own thread, so a broker that hangs
        # costs the agent at most commit_timeout_s per attempt, never the whole loop
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"commit-{name}")
        self._commit: Future[Any] | None = None
        self._user_assign = on_assign
        self._user_revoke = on_revoke
        self._user_lost = on_lost or on_revoke
        self.assignment: set[tuple[str, int]] = set()
        self.topics = list(topics)
        self._errors = ErrorLog(log, name)
        # after a disconnect, check the topics are still the ones we joined with before
        # committing: a broker that came back without its data must not get our offsets
        self._verify_positions = False
        self._admin_conf = admin_conf  # for topic ids; None: no check
        self._admin: AdminClient | None = None
        self._ids: dict[str, str] | None = None
        self._in_callback = False
        self._subscribe()
        self._closed = False

    def _subscribe(self) -> None:
        self._consumer.subscribe(
            self.topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in CONNECTION_CODES:
            self._verify_positions = True
        self._errors.record(err)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._admin_conf is not None:
            try:  # what "our" topics are: see _check_incarnation
                self._ids = self._topic_ids()
            except BrokerUnavailableError:
                self._ids = None  # learnt at the next check instead
        self.assignment |= {(tp.topic, tp.partition) for tp in partitions}
        if self._user_assign is not None:
            self._user_assign(partitions)  # e.g. the router restoring its markers
        # only now is the member ready to work on them
        self.membership.on_assign((tp.topic, tp.partition) for tp in partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._user_revoke is not None:
            # a commit from inside the callback runs on this thread: librdkafka serves it
            # while the rebalance (or close) waits for the callback to return
            self._in_callback = True
            try:
                self._user_revoke(partitions)
            finally:
                self._in_callback = False
        self.assignment -= {(tp.topic, tp.partition) for tp in partitions}
        self.membership.on_revoke((tp.topic, tp.partition) for tp in partitions)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning(
            "%s: lost %s partition(s) (session expired or group gone); rejoining",
            self.name,
            len(partitions),
        )
        if self._user_lost is not None:
            self._user_lost(partitions)
        self.assignment -= {(tp.topic, tp.partition) for tp in partitions}
        self.membership.on_lost((tp.topic, tp.partition) for tp in partitions)

    @property
    def fenced(self) -> bool:
        return self.membership.fenced is not None

    def fence(self, reason: str, *, rejoin_now: bool = False) -> None:
        """Stop handing out messages and committing until the group assigns partitions
        again (the caller dropped its uncommitted work); re-subscribe if librdkafka does
        not rejoin on its own."""
        self.membership.fence(reason, rejoin_now=rejoin_now)

    def _consume(self, max_messages: int, timeout: float) -> list[Message]:
        if self.membership.take_rejoin():
            log.info("%s: re-subscribing to get a new membership", self.name)
            self._consumer.unsubscribe()
            self._subscribe()
        return self._consumer.consume(max_messages, timeout)

    async def poll(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds.

        Errors that are only informational (end of partition) are dropped;
        anything else is logged and skipped (librdkafka retries on its own).
        While fenced, messages are dropped: they are re-read after the rejoin.
        """
        loop = asyncio.get_running_loop()
        messages: list[Message] = await loop.run_in_executor(
            self._executor, self._consume, max_messages, timeout
        )
        if self.fenced:
            return []
        good = []
        for msg in messages:
            err = msg.error()
            if err is None:
                good.append(msg)
            elif err.code() != KafkaError._PARTITION_EOF:
                self._errors.record(err, f"consume error on {msg.topic()}[{msg.partition()}]")
        return good

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking consumer call on the consumer's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def commit_sync(self, offsets: Sequence[TopicPartition]) -> None:
        """Commit and wait (at most ``commit_timeout_s``). Raises GroupMembershipLostError
        when the group moved on, BrokerUnavailableError when the broker did not answer."""
        if not offsets or self.fenced:
            return  # fenced: the work is re-done by whoever owns it now
        if self._verify_positions:
            self._check_incarnation()
        previous = self._commit
        if previous is not None and not previous.done():
            raise BrokerUnavailableError("offset commit: the previous one is still unanswered")
        try:
            if self._in_callback:
                results = self._consumer.commit(offsets=list(offsets), asynchronous=False)
            else:
                self._commit = future = self._committer.submit(
                    self._consumer.commit, offsets=list(offsets), asynchronous=False
                )
                results = future.result(timeout=self.commit_timeout_s)
        except FutureTimeout:
            raise BrokerUnavailableError(
                f"offset commit: no answer within {self.commit_timeout_s:.0f}s"
            ) from None
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
                return
            if isinstance(err, KafkaError):
                raise classify(err, "offset commit") from None
            raise BrokerError(f"offset commit failed: {exc}") from None
        for tp in results or []:
            if tp.error is not None:
                raise classify(tp.error, f"offset commit of {tp.topic}[{tp.partition}]")

    def _check_incarnation(self) -> None:
        """Before committing after a disconnect: are these still the topics we joined
        with? A broker that restarted without its data has none of them, or new ones
        (re-created by a watch, maybe in another process) whose offsets start again at
        0: our positions there would skip everything until they caught up."""
        if self._admin_conf is None:
            self._verify_positions = False
            return
        current = self._topic_ids()
        if self._ids is None:  # not known since the assignment: nothing to compare with
            self._ids, changed = current, []
        else:
            changed = [t for t in self.topics if self._ids.get(t) != current.get(t)]
        if changed:
            raise GroupMembershipLostError(
                f"{', '.join(changed)} re-created since this member joined: "
                "the broker restarted without its data"
            )
        self._verify_positions = False

    def _topic_ids(self) -> dict[str, str]:
        """Topic id per subscribed topic ("" for a missing one)."""
        if self._admin is None:
            self._admin = AdminClient(dict(self._admin_conf or {}))
        futures = self._admin.describe_topics(TopicCollection(self.topics), request_timeout=5)
        ids: dict[str, str] = {}
        for name, future in futures.items():
            try:
                ids[name] = str(future.result(timeout=6).topic_id)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if (
                    not isinstance(err, KafkaError)
                    or err.code() != KafkaError.UNKNOWN_TOPIC_OR_PART
                ):
                    raise BrokerUnavailableError(f"describing {name}: {exc}") from None
                ids[name] = ""
            except FutureTimeout:
                raise BrokerUnavailableError(f"describing {name}: no answer") from None
        return ids

    def verify_positions(self) -> None:
        """Check positions against the broker before the next commit (it was away)."""
        self._verify_positions = True

    async def commit(self, offsets: Sequence[TopicPartition]) -> None:
        await self.run(self.commit_sync, offsets)

    def refresh_metadata(self) -> None:
        """Ask the broker for fresh metadata now (e.g. right after topics were re-created),
        so the subscription sees them without waiting for the periodic refresh."""
        with contextlib.suppress(KafkaException):
            self._consumer.list_topics(timeout=5)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        if partitions:
            self._consumer.pause(list(partitions))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        if partitions:
            self._consumer.resume(list(partitions))

    def assigned_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.assignment)]

    @property
    def raw(self) -> Consumer:
        return self._consumer

    async def close(self, timeout: float = 10.0) -> None:
        """Leave the group and close; a broker that does not answer is waited for at most
        ``timeout`` seconds (the group then notices the departure by the session timeout)."""
        if self._closed:
            return
        self._closed = True
        try:
            closing = asyncio.get_running_loop().run_in_executor(
                self._executor, self._consumer.close
            )
            await asyncio.wait_for(asyncio.shield(closing), timeout)
        except TimeoutError:
            log.warning("%s: the consumer did not close within %.0fs", self.name, timeout)
        finally:
            self._executor.shutdown(wait=False)
            self._committer.shutdown(wait=False)
