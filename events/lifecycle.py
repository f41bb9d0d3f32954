"""`archon.gateway.lifecycle.v1`: what the gateway tells the world about itself (upstream
started / crashed / crash-looping, circuit breaker opened / closed). `emit` never blocks
and never fails: the supervisor and breakers call it synchronously, so records go through
a bounded queue (drops are counted) and a task produces them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio

from archon_gateway.core.circuit_breaker import BreakerState, CircuitBreaker
from archon_gateway.core.errors import GatewayError
from archon_gateway.events.envelope import encode_event
from archon_gateway.events.event_metrics import EventMetrics

log = logging.getLogger(__name__)

# Upstream states (upstreams.state.UpstreamState values) that are worth an event.
_UPSTREAM_EVENTS = {
    "ready": "gateway.upstream.started",
    "degraded": "gateway.upstream.crashed",
    "crash_looping": "gateway.upstream.crash_looping",
}
_BREAKER_EVENTS = {"open": "gateway.breaker.opened", "closed": "gateway.breaker.closed"}


class Publisher(Protocol):
    def publish(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[None]: ...


class LifecycleEvents:
    def __init__(
        self, topic: str, metrics: EventMetrics, *, source: str, capacity: int = 1000
    ) -> None:
        self._topic = topic
        self._metrics = metrics
        self._source = source
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, bytes]](capacity)

    def emit(self, event_type: str, payload: dict[str, Any], key: str) -> None:
        """Queue one lifecycle event (keyed by what it is about, so they stay in order)."""
        value = encode_event(event_type, payload, source=self._source)
        try:
            self._send.send_nowait((key, value))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._metrics.dropped.inc()

    def upstream_state_changed(self, name: str, state: str, error: str | None) -> None:
        event_type = _UPSTREAM_EVENTS.get(state)
        if event_type is not None:
            self.emit(event_type, {"upstream": name, "state": state, "error": error}, name)

    def state_change(self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        """A circuit-breaker listener (BreakerRegistry.add_listener)."""
        event_type = _BREAKER_EVENTS.get(new)
        if event_type is not None:
            payload = {"breaker": breaker.name, "from": old, "to": new}
            self.emit(event_type, payload, breaker.name)

    @asynccontextmanager
    async def running(self, publisher: Publisher) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._drain, publisher)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _drain(self, publisher: Publisher) -> None:
        async for key, value in self._receive:
            while True:
                try:
                    await publisher.publish(self._topic, key.encode(), value)
                    break
                except GatewayError as exc:
                    # The broker is down: hold this event (the queue bounds what waits).
                    log.debug("lifecycle event waits for the broker: %s", exc)
                    await anyio.sleep(1.0)
