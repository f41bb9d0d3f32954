"""The in-process event bus: what serves events when no Kafka broker is configured. Same
envelope, handlers and dispatcher as Kafka; records of one key go to one of `partitions`
bounded queues, each handled in order by its own worker (publishing waits when a queue is
full). Subscribers (tests, an embedding application) see every record published."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from archon_gateway.core.errors import Unavailable
from archon_gateway.core.health import ComponentStatus
from archon_gateway.events.dispatch import Dispatcher, Outgoing, Record
from archon_gateway.events.event_metrics import EventMetrics


class InProcessBus:
    def __init__(
        self,
        dispatcher: Dispatcher,
        metrics: EventMetrics,
        *,
        request_topics: list[str],
        partitions: int = 4,
        capacity: int = 1000,
    ) -> None:
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._request_topics = set(request_topics)
        self._capacity = capacity
        self._queues = [
            anyio.create_memory_object_stream[Record](capacity) for _ in range(partitions)
        ]
        self._offsets: dict[tuple[str, int], int] = {}
        self._subscribers: list[MemoryObjectSendStream[Record]] = []
        self._running = False

    def status(self) -> ComponentStatus:
        return ComponentStatus("ok", "in-process bus (no kafka_bootstrap_servers)")

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if not self._running:
            raise Unavailable("the in-process event bus is not running")
        partition = zlib.crc32(key) % len(self._queues) if key is not None else 0
        offset = self._offsets.get((topic, partition), 0)
        self._offsets[topic, partition] = offset + 1
        record = Record(topic, partition, offset, key, value)
        self._metrics.produced_on(topic)
        for subscriber in list(self._subscribers):
            try:
                subscriber.send_nowait(record)
            except anyio.WouldBlock:
                self._metrics.dropped.inc()  # a slow subscriber loses records, not the bus
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._subscribers.remove(subscriber)
        if topic in self._request_topics:
            await self._queues[partition][0].send(record)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[MemoryObjectReceiveStream[Record]]:
        """Every record published from now on, while the block runs."""
        send, receive = anyio.create_memory_object_stream[Record](self._capacity)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            send.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[InProcessBus]:
        async with anyio.create_task_group() as tg:
            for _, receive in self._queues:
                tg.start_soon(self._work, receive)
            self._running = True
            try:
                yield self
            finally:
                self._running = False
                tg.cancel_scope.cancel()

    async def _work(self, queue: MemoryObjectReceiveStream[Record]) -> None:
        async for record in queue:
            await self._dispatcher.process(record, self._deliver)

    async def _deliver(self, outgoing: list[Outgoing]) -> None:
        for item in outgoing:
            await self.publish(item.topic, item.key, item.value)
