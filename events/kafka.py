"""The Kafka side: one producer and one group consumer, kept connected for as long as the
gateway runs.

- Start: the gateway starts even with the broker down; this component reports "down" and
  connects with backoff (and again whenever a session fails).
- Delivery is at-least-once: an offset is committed only once its record was handled and
  its response produced (acknowledged by the broker), and only up to the first record not
  yet finished. Records are handled concurrently by a pool of workers (bounded overall and
  per partition); records with the same key run one after another, in offset order. One
  sender gives responses to the producer in handling order; acknowledgements are awaited
  per chunk, then the chunk's offsets may be committed (every `commit_interval`).
- Backpressure: a partition with too many records in flight is paused (`consumer.pause`),
  all of them when the overall bound is reached; they resume as records finish.
- On a rebalance, records of revoked partitions get `drain_timeout` seconds to finish and
  their offsets are committed, so the next owner does not handle them again.
- A position beyond the log (a broker that lost its data, a committed offset left from
  before) is read again from the earliest offset: counted, one warning a minute. Some
  brokers (Tansu) answer such a fetch with nothing rather than OFFSET_OUT_OF_RANGE, so the
  position is also checked against the high watermark.
- `publish` fails within `publish_timeout` with "Kafka is not connected" while the broker
  is down or does not acknowledge.
"""

from __future__ import annotations

import logging
import ssl
from asyncio import Future
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import anyio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RequestTimedOutError,
    UnknownError,
)
from anyio.abc import TaskGroup

from archon_gateway.core.errors import BrokerUnavailable, Unavailable
from archon_gateway.core.health import ComponentStatus
from archon_gateway.core.text import one_line
from archon_gateway.events.dispatch import Dispatcher, Handled, Record
from archon_gateway.events.event_metrics import EventMetrics
from archon_gateway.events.flow import PartitionFlow
from archon_gateway.events.workers import WorkerPool

log = logging.getLogger(__name__)

# Errors of a send that mean the broker is gone or restarting (Tansu answers UnknownError
# while it comes back), as opposed to a record the broker refuses.
_DISCONNECTED = (
    KafkaConnectionError,
    NodeNotReadyError,
    KafkaTimeoutError,
    RequestTimedOutError,
    UnknownError,
)
# At most one warning per this many seconds about offsets reset to the earliest (each
# reset is counted in archon_event_offset_resets_total).
_RESET_WARNING_INTERVAL = 60.0


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap_servers: str
    group_id: str = "archon-gateway"
    client_id: str = "archon-gateway"
    # Passed to every aiokafka client as they are: security_protocol, sasl_mechanism,
    # sasl_plain_username, sasl_plain_password, ssl_context.
    security: Mapping[str, Any] = field(default_factory=dict)
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    partitions: int = 6
    replication_factor: int = 1
    # Records of one partition fetched and not finished (all of them run at once, but
    # for those waiting on an earlier record of their key); more pauses the partition.
    partition_concurrency: int = 256
    # Records handled at once in all (more wait); fetched and unfinished records in all
    # (more pauses every partition).
    concurrency: int = 256
    max_buffered: int = 5_000
    fetch_max_records: int = 500
    commit_interval: float = 0.2
    # How often lag is measured and positions are checked against the log's end.
    lag_interval: float = 0.2
    watch_interval: float = 2.0
    drain_timeout: float = 10.0
    reconnect_backoff: float = 0.5
    reconnect_backoff_max: float = 30.0
    request_timeout_ms: int = 10_000
    # `publish` waits this long for the broker's acknowledgement.
    publish_timeout: float = 2.0

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            **self.security,
        }


def ssl_context(cafile: str | None, certfile: str | None, keyfile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context


# A fetched record to handle, with its partition and that partition's flow.
_Job = tuple[TopicPartition, "PartitionFlow[Any]", ConsumerRecord[Any, Any]]


class _Pending(NamedTuple):
    """A handled record whose responses are on their way to the broker."""

    tp: TopicPartition
    flow: PartitionFlow[Any]
    offset: int
    handled: Handled


class KafkaEvents:
    """Consumes `request_topics` through `dispatcher`; `publish` produces any record."""

    def __init__(
        self,
        options: KafkaOptions,
        dispatcher: Dispatcher,
        metrics: EventMetrics,
        *,
        request_topics: list[str],
        create_topics: list[str],
    ) -> None:
        self._options = options
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._request_topics = request_topics
        self._create_topics = create_topics
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._flows: dict[TopicPartition, PartitionFlow[_Job]] = {}
        self._to_commit: dict[TopicPartition, int] = {}
        # Handled records: queued for the producer, being given to it, and given to it
        # (with the futures of their acknowledgements), each in handling order.
        self._outbox: list[_Pending] = []
        self._outbox_ready = anyio.Event()
        self._sending: list[_Pending] = []
        self._sent: deque[tuple[list[_Pending], list[Future[Any]]]] = deque()
        self._sent_ready = anyio.Event()
        self._paused: set[TopicPartition] = set()
        self._space = anyio.Event()
        self._status = ComponentStatus("down", f"connecting to {options.bootstrap_servers}")
        self._connected = anyio.Event()
        self._lag = 0
        self._reset_warned_at: float | None = None

    # -- what others see ------------------------------------------------------------------

    def status(self) -> ComponentStatus:
        return self._status

    @property
    def connected(self) -> bool:
        return self._producer is not None and self._status.status == "ok"

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce one record and wait (at most `publish_timeout`) for the broker's
        acknowledgement; fails at once while the broker is known to be down."""
        producer = self._producer
        if producer is None or self._status.status != "ok":
            raise BrokerUnavailable(f"Kafka is not connected ({self._status.detail})")
        limit = self._options.publish_timeout
        try:
            with anyio.fail_after(limit):
                await producer.send_and_wait(topic, value, key=key)
        except TimeoutError as exc:
            # aiokafka keeps the record queued: it may still arrive once the broker is back.
            raise BrokerUnavailable(
                f"Kafka is not connected (no acknowledgement within {limit:g} s; "
                "the event may still be delivered)"
            ) from exc
        except _DISCONNECTED as exc:
            raise BrokerUnavailable(f"Kafka is not connected ({one_line(exc)})") from exc
        except KafkaError as exc:
            raise Unavailable(f"Kafka did not take the event: {one_line(exc)}") from exc
        self._metrics.produced_on(topic)

    # -- running ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[KafkaEvents]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._connect_forever)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _connect_forever(self) -> None:
        delay = self._options.reconnect_backoff
        where = self._options.bootstrap_servers
        while True:
            try:
                await self._session()
                # It returns when the broker is back after an outage: a new session
                # re-creates topics a memory-only broker lost, and its consumer resumes
                # from the committed offsets (the positions held now may point past the
                # end of a log that began again).
                log.warning("Kafka at %s is back; resuming from the committed offsets", where)
                delay = self._options.reconnect_backoff
                continue
            except Exception as raised:
                exc = _leaf(raised)
                if not isinstance(exc, KafkaError | OSError | Unavailable):
                    raise
                reason = one_line(exc)
                if self._connected.is_set():
                    delay = self._options.reconnect_backoff  # it was up: start over
            self._metrics.broker_up.set(0)
            self._status = ComponentStatus(
                "down", f"cannot reach Kafka at {where}: {reason}; retrying in {delay:g} s"
            )
            log.warning("Kafka at %s: %s; reconnecting in %g s", where, reason, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, self._options.reconnect_backoff_max)

    async def _session(self) -> None:
        """One connected session: raises when it cannot go on, returns when the broker
        answers again after an outage."""
        options = self._options
        async with AsyncExitStack() as stack:
            producer = AIOKafkaProducer(
                acks="all", linger_ms=2, max_batch_size=256 * 1024, **options.client_kwargs()
            )
            stack.push_async_callback(_shielded_stop, producer)  # also after a failed start
            await producer.start()
            await self._ensure_topics()
            consumer = AIOKafkaConsumer(
                group_id=options.group_id,
                enable_auto_commit=False,
                # Raised instead of reset silently, so a reset is counted and logged: a
                # partition without a committed offset starts at the earliest, one whose
                # offset is out of range too (_fetch_loop).
                auto_offset_reset="none",
                session_timeout_ms=options.session_timeout_ms,
                heartbeat_interval_ms=options.heartbeat_interval_ms,
                max_poll_records=options.fetch_max_records,
                **options.client_kwargs(),
            )
            stack.push_async_callback(_shielded_stop, consumer)
            await consumer.start()
            self._producer, self._consumer = producer, consumer
            stack.callback(self._forget_session)
            async with anyio.create_task_group() as tg:
                consumer.subscribe(self._request_topics, listener=_Rebalance(self, tg))
                self._status = ComponentStatus("ok", "connected; joining the consumer group")
                self._metrics.broker_up.set(1)
                self._connected.set()
                # Its workers are the overall concurrency bound.
                workers = WorkerPool[_Job](tg, options.concurrency, self._handle)
                tg.start_soon(self._watch_broker, consumer, tg)
                tg.start_soon(self._commit_loop, consumer)
                tg.start_soon(self._lag_loop, consumer)
                tg.start_soon(self._send_loop, producer)
                tg.start_soon(self._ack_loop)
                await self._fetch_loop(consumer, workers)

    def _forget_session(self) -> None:
        self._producer = self._consumer = None
        self._connected = anyio.Event()
        self._flows.clear()
        self._to_commit.clear()
        self._paused.clear()
        # Not produced (or not acknowledged): their events are handled again on redelivery.
        unsent = [*self._outbox, *self._sending, *(p for chunk, _ in self._sent for p in chunk)]
        self._outbox, self._sending = [], []
        self._sent.clear()
        for pending in unsent:
            pending.handled.abandoned()
        self._metrics.in_flight.set(0)
        self._metrics.paused.set(0)

    async def _ensure_topics(self) -> list[str]:
        """Create the missing topics; returns their names."""
        admin = AIOKafkaAdminClient(**self._options.client_kwargs())
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [name for name in self._create_topics if name not in existing]
            if missing:
                new = [
                    NewTopic(name, self._options.partitions, self._options.replication_factor)
                    for name in missing
                ]
                # Another gateway of the group may have made them first: that is fine
                # (the broker answers per topic, "already exists" included).
                await admin.create_topics(new)
                log.info("created Kafka topics: %s", ", ".join(missing))
            return missing
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await admin.close()

    # -- consuming -------------------------------------------------------------------------

    async def _fetch_loop(self, consumer: AIOKafkaConsumer, workers: WorkerPool[_Job]) -> None:
        while True:
            if self._paused and self._paused >= consumer.assignment():
                # Everything is paused: wait for space instead of polling for nothing.
                with anyio.move_on_after(1.0):
                    await self._space.wait()
                self._space = anyio.Event()
                self._apply_backpressure(consumer)
            try:
                batch = await consumer.getmany(
                    timeout_ms=200, max_records=self._options.fetch_max_records
                )
            except NoOffsetForPartitionError as exc:  # nothing committed yet: a new group
                await self._from_earliest(consumer, {exc.args[0]: None})
                continue
            except OffsetOutOfRangeError as exc:  # the broker says the offset is gone
                await self._from_earliest(consumer, dict(exc.args[0]))
                continue
            for tp, records in batch.items():
                flow = self._flows.get(tp)
                if flow is None:  # fetched just before a revocation: the next owner has it
                    continue
                for record in records:
                    job = (tp, flow, record)
                    if flow.add(record.offset, record.key, job):
                        workers.submit(job)
            self._metrics.in_flight.set(self._buffered())
            self._apply_backpressure(consumer)

    def _buffered(self) -> int:
        return sum(len(flow) for flow in self._flows.values())

    def _apply_backpressure(self, consumer: AIOKafkaConsumer) -> None:
        options = self._options
        assigned = consumer.assignment()
        if self._buffered() >= options.max_buffered:
            wanted = set(assigned)
        else:
            wanted = {
                tp
                for tp, flow in self._flows.items()
                if len(flow) >= options.partition_concurrency and tp in assigned
            }
        if pause := wanted - self._paused:
            consumer.pause(*pause)
            self._metrics.pauses.inc(len(pause))
        if resume := (self._paused - wanted) & assigned:
            consumer.resume(*resume)
        self._paused = wanted
        self._metrics.paused.set(len(wanted))

    async def _handle(self, job: _Job) -> None:
        """Handles a record; after it, the records of its key that waited, in order."""
        next_job: _Job | None = job
        while next_job is not None:
            tp, flow, record = next_job
            if flow.revoked:  # the partition's next owner handles it
                return
            handled = await self._dispatcher.handle(
                Record(tp.topic, tp.partition, record.offset, record.key, record.value)
            )
            # Queued before the key's next record runs, so responses keep the key's order.
            self._outbox.append(_Pending(tp, flow, record.offset, handled))
            self._outbox_ready.set()
            next_job = flow.next_of_key(record.key)

    async def _send_loop(self, producer: AIOKafkaProducer) -> None:
        """Gives the handled records' responses to the producer in handling order, without
        waiting for acknowledgements (`_ack_loop` does). One sender only: aiokafka wakes
        every waiting sender each time a full batch leaves, and many waiters cost dearly."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready = anyio.Event()
            self._sending, self._outbox = self._outbox, []
            futures: list[Future[Any]] = []
            for pending in self._sending:
                for item in pending.handled.outgoing:
                    futures.append(await producer.send(item.topic, item.value, key=item.key))
            self._sent.append((self._sending, futures))
            self._sending = []
            self._sent_ready.set()

    async def _ack_loop(self) -> None:
        """Settles handled records once the broker acknowledged their responses: only then
        may their offsets be committed. A failed acknowledgement ends the session (raised):
        what was not acknowledged is handled again from the committed offsets."""
        while True:
            while not self._sent:
                await self._sent_ready.wait()
                self._sent_ready = anyio.Event()
            chunk, futures = self._sent[0]
            for future in futures:
                await future
            self._sent.popleft()
            for pending in chunk:
                pending.handled.produced()
                for item in pending.handled.outgoing:
                    self._metrics.produced_on(item.topic)
                position = pending.flow.finish(pending.offset)
                if position is not None and not pending.flow.revoked:
                    self._to_commit[pending.tp] = position
            self._space.set()

    async def _commit_loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await anyio.sleep(self._options.commit_interval)
            await self._commit(consumer)

    async def _lag_loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await anyio.sleep(self._options.lag_interval)
            await self._measure_lag(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        offsets = {tp: pos for tp, pos in self._to_commit.items() if tp in assigned}
        if not offsets:
            return
        try:
            await _shielded_commit(consumer, offsets, self._options.request_timeout_ms)
        except CommitFailedError as exc:
            # The group went on without this member (or forgot it: a broker that lost its
            # data). Dropped, not retried: committed on revocation they would land as a
            # memberless commit, over an emptied log too; the records are delivered again.
            log.warning("offset commit refused after a rebalance: %s", one_line(exc))
        except KafkaError as exc:
            log.warning("offset commit failed, will retry: %s", one_line(exc))
            return
        for tp, position in offsets.items():
            if self._to_commit.get(tp) == position:
                del self._to_commit[tp]

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag per partition; a position past the high watermark means the log behind it
        is gone (a broker that lost its data answers such a fetch with nothing)."""
        total = 0
        beyond: dict[TopicPartition, int | None] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:
                position = await consumer.position(tp)
            except KafkaError:
                continue
            if position > high:
                beyond[tp] = position
            lag = max(0, high - position)
            total += lag
            self._metrics.lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
        self._lag = total
        if beyond:
            await self._from_earliest(consumer, beyond)

    async def _from_earliest(
        self, consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int | None]
    ) -> None:
        """Read partitions again from their earliest offset. `positions`: where each one
        stood, None when it had no committed offset (a new group: not counted as a reset)."""
        tps = [tp for tp in positions if tp in consumer.assignment()]
        if not tps:
            return
        for tp in tps:
            # Records in flight belong to the lost log: none of their offsets is committed.
            old = self._flows.get(tp)
            if old is not None:
                old.revoked = True
                self._flows[tp] = PartitionFlow[_Job]()
            self._to_commit.pop(tp, None)
        await consumer.seek_to_beginning(*tps)
        lost = {tp: offset for tp, offset in positions.items() if tp in tps and offset is not None}
        if not lost:
            return
        for tp in lost:
            self._metrics.offset_resets.labels(topic=tp.topic).inc()
        where = ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in lost.items())
        now = anyio.current_time()
        if self._reset_warned_at is None or now - self._reset_warned_at >= _RESET_WARNING_INTERVAL:
            self._reset_warned_at = now
            log.warning(
                "Kafka offsets beyond the log (did the broker lose its data?): %s; reading "
                "from the earliest offset (archon_event_offset_resets_total counts resets)",
                where,
            )
        else:
            log.info("Kafka offsets beyond the log: %s; reading from the earliest offset", where)

    async def _watch_broker(self, consumer: AIOKafkaConsumer, tg: TaskGroup) -> None:
        """Readiness follows the broker: aiokafka reconnects by itself, this only notices.
        When the broker is back (perhaps empty: a memory-only broker lost its topics), the
        topics are made again."""
        where = self._options.bootstrap_servers
        down = False
        while True:
            try:
                with anyio.fail_after(max(self._options.watch_interval, 1.0) * 2):
                    await consumer.topics()
            except (KafkaError, TimeoutError) as exc:
                reason = one_line(exc) if str(exc) else "no answer"
                self._status = ComponentStatus("down", f"Kafka at {where} unreachable: {reason}")
                self._metrics.broker_up.set(0)
                down = True
            else:
                if down:
                    tg.cancel_scope.cancel()  # the session ends; a new one starts
                    return
                assigned = len(consumer.assignment())
                paused = f", {len(self._paused)} paused" if self._paused else ""
                self._status = ComponentStatus(
                    "ok", f"{assigned} partitions assigned{paused}, lag {self._lag}"
                )
                self._metrics.broker_up.set(1)
            await anyio.sleep(self._options.watch_interval)

    # -- rebalancing -----------------------------------------------------------------------

    async def _within_log(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """The offsets not past their partition's end. A revocation also follows a broker
        that restarted empty (the group forgot this member): committed then, as a memberless
        commit, positions of the lost log would land over the new one."""
        try:
            with anyio.fail_after(self._options.request_timeout_ms / 1000):
                ends = await consumer.end_offsets(list(offsets))
        except (KafkaError, TimeoutError) as exc:
            reason = one_line(exc) if str(exc) else "no answer"
            log.warning("revoked partitions not committed, their log end is unknown: %s", reason)
            return {}
        kept = {tp: offset for tp, offset in offsets.items() if offset <= ends.get(tp, -1)}
        if past := {tp: offset for tp, offset in offsets.items() if tp not in kept}:
            where = ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in past.items())
            log.warning(
                "not committing offsets past the log (did the broker lose its data?): %s", where
            )
        return kept

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            if tp not in self._flows:
                self._flows[tp] = PartitionFlow[_Job]()

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        consumer = self._consumer
        flows = {tp: self._flows[tp] for tp in revoked if tp in self._flows}
        with anyio.move_on_after(self._options.drain_timeout):
            for flow in flows.values():
                await flow.drained()
        # What is still running now is the next owner's to handle again.
        for tp, flow in flows.items():
            flow.revoked = True
            self._flows.pop(tp, None)
        self._paused -= set(flows)
        offsets = {tp: self._to_commit.pop(tp) for tp in flows if tp in self._to_commit}
        if not offsets or consumer is None:
            return
        offsets = await self._within_log(consumer, offsets)
        if offsets:
            try:
                await _shielded_commit(consumer, offsets, self._options.request_timeout_ms)
            except KafkaError as exc:
                log.warning("commit of revoked partitions failed: %s", one_line(exc))


def _leaf(exc: Exception) -> Exception:
    """The first error inside (nested) exception groups from the session's task groups."""
    while isinstance(exc, ExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def _shielded_commit(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], timeout_ms: int
) -> None:
    """Commit without being cut short: a commit cancelled mid-request leaves aiokafka's
    own task failing later with no one to hear it (and the offsets uncommitted)."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(timeout_ms / 1000):
        await consumer.commit(offsets)


async def _shielded_stop(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    """Stop a client even while being cancelled: an unstopped consumer keeps its background
    tasks (heartbeats) running, and the group waits for a member that never rejoins."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
        await client.stop()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, events: KafkaEvents, tg: TaskGroup) -> None:
        self._events = events

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._events._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._events._assigned(set(assigned))
