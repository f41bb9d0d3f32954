"""What happens to one consumed record, whoever delivered it (Kafka or the in-process bus):
validate the envelope, skip an event id already handled, run its handler with retries, and
hand the records to produce (response, dead letter) to `deliver`. The event counts as
handled only once `deliver` returned, so a record whose response could not be produced is
handled again when it is redelivered."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import anyio

from archon_gateway.core.errors import (
    GatewayError,
    MalformedEvent,
    ToolBusy,
    counts_as_outage,
)
from archon_gateway.core.text import one_line
from archon_gateway.events.envelope import (
    Envelope,
    dead_letter,
    parse_envelope,
    response_for,
)
from archon_gateway.events.event_metrics import EventMetrics
from archon_gateway.events.handlers import HandlerRegistry
from archon_gateway.events.topics import Topics

log = logging.getLogger(__name__)

NO_HANDLER = "_none_"  # metrics label for events no handler took
# The largest record the gateway produces: under Kafka's default 1 MiB message limit (broker
# and aiokafka's max_request_size), with room for the batch header.
MAX_RECORD_BYTES = 1_000_000


class Record(NamedTuple):  # a tuple: made for every event, cheaper than a dataclass
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Outgoing(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes


Deliver = Callable[[list[Outgoing]], Awaitable[None]]


class EventRows(Protocol):
    """Where handled events are counted per interval (the store's `event_metrics` rows):
    keyed by event type and handler. Malformed and unknown events count as dead letters
    under `_malformed_` / `_unknown_type_` and the handler `_none_`."""

    def processed(self, event_type: str, handler: str, seconds: float) -> None: ...

    def failed(self, event_type: str, handler: str, seconds: float) -> None: ...

    def retried(self, event_type: str, handler: str) -> None: ...

    def dead_lettered(self, event_type: str, handler: str) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff: float = 0.5
    backoff_max: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))


class RecentIds:
    """The event ids handled lately (bounded; the oldest are forgotten first). An id being
    handled now is held by its first taker; a duplicate waits for it, then is skipped."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._done: OrderedDict[str, None] = OrderedDict()
        # Ids being handled -> an event for duplicates to wait on (made only when one does).
        self._running: dict[str, anyio.Event | None] = {}

    async def claim(self, event_id: str) -> bool:
        """True when the caller must handle the event; False for a duplicate."""
        while True:
            if event_id in self._done:
                self._done.move_to_end(event_id)
                return False
            if event_id not in self._running:
                self._running[event_id] = None
                return True
            running = self._running[event_id]
            if running is None:
                running = self._running[event_id] = anyio.Event()
            await running.wait()

    def release(self, event_id: str, *, handled: bool) -> None:
        running = self._running.pop(event_id)
        if running is not None:
            running.set()
        if handled and self._capacity:
            self._done[event_id] = None
            while len(self._done) > self._capacity:
                self._done.popitem(last=False)


class Dispatcher:
    def __init__(
        self,
        registry: HandlerRegistry,
        topics: Topics,
        metrics: EventMetrics,
        *,
        source: str,
        max_event_bytes: int,
        retry: RetryPolicy,
        recent_ids: int = 10_000,
        rows: EventRows | None = None,
    ) -> None:
        self._registry = registry
        self._rows = rows
        self._topics = topics
        self._metrics = metrics
        self._source = source
        self._max_event_bytes = max_event_bytes
        self._retry = retry
        self._recent = RecentIds(recent_ids)

    async def process(self, record: Record, deliver: Deliver) -> None:
        """Handle `record` and produce what it yields through `deliver`, in one go."""
        handled = await self.handle(record)
        try:
            if handled.outgoing:
                await deliver(handled.outgoing)
        except BaseException:
            handled.abandoned()
            raise
        handled.produced()

    async def handle(self, record: Record) -> Handled:
        """Run `record`'s handler (with retries); the records it yields are the caller's to
        produce, after which it calls `produced()` (or `abandoned()` when it could not)."""
        try:
            event = parse_envelope(record.value, max_bytes=self._max_event_bytes)
        except MalformedEvent as exc:
            return self._dead_letter(record, str(exc), "malformed")
        handler = self._registry.for_type(event.event_type)
        service = self._topics.service_of(record.topic)
        if handler is None or (service is not None and handler.service != service):
            where = f" on {record.topic}" if handler is not None else ""
            reason = f"no handler for event type '{event.event_type}'{where}"
            return self._dead_letter(record, reason, "unknown_type")
        if not await self._recent.claim(event.event_id):
            return Handled(self, [], record.topic, handler.name, "duplicate")
        started = time.perf_counter()
        try:
            outgoing, outcome = await self._run(record, event, handler.name)
        except BaseException:
            self._recent.release(event.event_id, handled=False)
            raise
        return Handled(
            self,
            outgoing,
            record.topic,
            handler.name,
            outcome,
            event_type=event.event_type,
            event_id=event.event_id,
            started=started,
        )

    def _settle(self, handled: Handled, *, produced: bool) -> None:
        if handled.event_id is not None:
            self._recent.release(handled.event_id, handled=produced)
        if not produced:
            return
        seconds = 0.0
        if handled.started is not None:
            seconds = time.perf_counter() - handled.started
            self._metrics.handled_in(handled.handler, seconds)
        self._metrics.outcome(handled.topic, handled.handler, handled.outcome)
        if handled.dead_letter_reason is not None:
            self._metrics.dead_lettered(handled.topic, handled.dead_letter_reason)
        rows = self._rows
        if rows is None or handled.outcome == "duplicate":
            return
        event_type, handler = handled.event_type, handled.handler
        if handled.outcome == "ok":
            rows.processed(event_type, handler, seconds)
        elif handled.started is not None:  # its handler ran and failed
            rows.failed(event_type, handler, seconds)
        if handled.outcome == "dead_lettered":
            rows.dead_lettered(event_type, handler)

    async def _run(
        self, record: Record, event: Envelope, handler_name: str
    ) -> tuple[list[Outgoing], str]:
        handler = self._registry.for_type(event.event_type)
        assert handler is not None
        route = handler.routes[event.event_type]
        response_topic = self._topics.response(handler.service)
        key = record.key
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await route(event)
            except Exception as exc:
                reason = one_line(exc)
                # Busy (admission control, an MCP client holds the slots): try again later.
                if not counts_as_outage(exc) and not isinstance(exc, ToolBusy):
                    # The request itself was refused: answering is the handling.
                    error = {"kind": _kind(exc), "message": reason}
                    response = response_for(event, source=self._source, error=error)
                    return [Outgoing(response_topic, key, response)], "failed"
                if attempt >= self._retry.max_attempts:
                    log.warning(
                        "event %s (%s) failed %d times, dead-lettered: %s",
                        event.event_id,
                        event.event_type,
                        attempt,
                        reason,
                    )
                    error = {
                        "kind": _kind(exc),
                        "message": f"gave up after {attempt} attempts: {reason}",
                    }
                    response = response_for(event, source=self._source, error=error)
                    dlq = self._dlq_record(record, f"failed {attempt} times: {reason}", attempt)
                    return [Outgoing(response_topic, key, response), dlq], "dead_lettered"
                self._metrics.retried(handler_name)
                if self._rows is not None:
                    self._rows.retried(event.event_type, handler_name)
                log.info(
                    "event %s (%s) attempt %d failed, retrying: %s",
                    event.event_id,
                    event.event_type,
                    attempt,
                    reason,
                )
                await anyio.sleep(self._retry.delay(attempt))
                continue
            response = response_for(event, source=self._source, result=_jsonable(result))
            if len(response) > MAX_RECORD_BYTES:
                # Kafka would refuse it, and the event would come back again and again.
                error = {
                    "kind": "ResponseTooLarge",
                    "message": f"the result is {len(response)} bytes as an event, over the "
                    f"{MAX_RECORD_BYTES}-byte limit of one produced record",
                }
                response = response_for(event, source=self._source, error=error)
                return [Outgoing(response_topic, key, response)], "failed"
            return [Outgoing(response_topic, key, response)], "ok"

    def _dlq_record(self, record: Record, reason: str, attempts: int) -> Outgoing:
        value = dead_letter(
            record.value,
            max_bytes=MAX_RECORD_BYTES,
            reason=reason,
            attempts=attempts,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            source=self._source,
        )
        return Outgoing(self._topics.dlq, record.key, value)

    def _dead_letter(self, record: Record, reason: str, kind: str) -> Handled:
        log.warning(
            "event at %s[%d]@%d dead-lettered: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        outgoing = [self._dlq_record(record, reason, 0)]
        return Handled(
            self,
            outgoing,
            record.topic,
            NO_HANDLER,
            "dead_lettered",
            event_type=f"_{kind}_",  # not the record's own type: user input mints no rows
            dead_letter_reason=kind,
        )


class Handled:
    """What handling one record came to: the records to produce, and what is settled (the
    event id marked handled, the outcome counted) once they are produced."""

    __slots__ = (
        "_dispatcher",
        "dead_letter_reason",
        "event_id",
        "event_type",
        "handler",
        "outcome",
        "outgoing",
        "started",
        "topic",
    )

    def __init__(
        self,
        dispatcher: Dispatcher,
        outgoing: list[Outgoing],
        topic: str,
        handler: str,
        outcome: str,
        *,
        event_type: str = "",
        event_id: str | None = None,
        started: float | None = None,
        dead_letter_reason: str | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self.outgoing = outgoing
        self.topic = topic
        self.handler = handler
        self.outcome = outcome
        self.event_type = event_type
        self.event_id = event_id
        self.started = started
        if dead_letter_reason is None and outcome == "dead_lettered":
            dead_letter_reason = "exhausted"
        self.dead_letter_reason = dead_letter_reason

    def produced(self) -> None:
        """Its records are produced (acknowledged): the event counts as handled."""
        self._dispatcher._settle(self, produced=True)

    def abandoned(self) -> None:
        """Its records will not be produced now: a redelivery handles it again."""
        self._dispatcher._settle(self, produced=False)


def _kind(exc: BaseException) -> str:
    """The error's class name for the response (`InvalidArgument`, `ToolTimeout`, ...)."""
    return type(exc).__name__ if isinstance(exc, GatewayError) else "InternalFault"


def _jsonable(result: Any) -> Any:
    dump = getattr(result, "model_dump", None)
    return dump(mode="json") if callable(dump) else result
