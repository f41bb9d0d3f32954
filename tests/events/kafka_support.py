"""Producing requests and collecting what the gateway produces, with plain aiokafka."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from archon_gateway.events.dispatch import Dispatcher, RetryPolicy
from archon_gateway.events.envelope import encode, new_envelope
from archon_gateway.events.event_metrics import EventMetrics
from archon_gateway.events.handlers import Handler, HandlerRegistry
from archon_gateway.events.kafka import KafkaEvents, KafkaOptions
from archon_gateway.events.topics import Topics
from tests.support import wait_until

QUICK_RETRY = RetryPolicy(3, 0.05)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def short_options(bootstrap: str, group: str, **overrides: Any) -> KafkaOptions:
    """Short timeouts: Tansu joins a group in about half the session timeout."""
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "session_timeout_ms": 1500,
        "heartbeat_interval_ms": 500,
        "partitions": 4,
        "commit_interval": 0.05,
        "lag_interval": 0.05,
        "watch_interval": 0.2,
        "drain_timeout": 5.0,
        "reconnect_backoff": 0.1,
        "reconnect_backoff_max": 0.5,
        "request_timeout_ms": 3000,
    }
    values.update(overrides)
    return KafkaOptions(**values)


def request(event_type: str, payload: dict[str, Any], **fields: Any) -> tuple[str, bytes]:
    envelope = new_envelope(event_type, payload, source="test", **fields)
    return envelope.event_id, encode(envelope)


async def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: int
) -> dict[int, int]:
    """The group's committed offset of each partition that has one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        found = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await consumer.stop()
    return {p: offset for p, offset in found.items() if offset is not None}


async def commit_offsets(
    bootstrap: str, group: str, topic: str, offsets: dict[int, int], partitions: int
) -> None:
    """Create `topic` and commit `offsets` for `group` (not a member: the group is empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = {TopicPartition(topic, p): offset for p, offset in offsets.items()}
        consumer.assign(list(tps))
        await consumer.commit(tps)
    finally:
        await consumer.stop()


@dataclass
class Collected:
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [event for name, event in self.records if name == topic]

    async def wait(self, check: Callable[[Collected], bool], within: float = 30) -> None:
        await wait_until(lambda: check(self), within=within)


@asynccontextmanager
async def collecting(bootstrap: str, topics: list[str]) -> AsyncIterator[Collected]:
    """Everything produced on `topics` (from their start) while the block runs."""
    collected = Collected()
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        metadata_max_age_ms=500,
    )
    await consumer.start()

    async def follow() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for tp, items in batch.items():
                for item in items:
                    collected.records.append((tp.topic, json.loads(item.value)))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            yield collected
            tg.cancel_scope.cancel()
    finally:
        await consumer.stop()


@dataclass
class EventsUnderTest:
    events: KafkaEvents
    topics: Topics
    metrics: EventMetrics
    registry: CollectorRegistry


def kafka_events(
    options: KafkaOptions,
    prefix: str,
    handlers: list[Handler],
    *,
    retry: RetryPolicy = QUICK_RETRY,
) -> EventsUnderTest:
    """A consumer with the test's own handlers (no gateway around it)."""
    topics = Topics(prefix)
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    handler_registry = HandlerRegistry(handlers)
    dispatcher = Dispatcher(
        handler_registry, topics, metrics, source="test", max_event_bytes=64 * 1024, retry=retry
    )
    services = handler_registry.services()
    events = KafkaEvents(
        options,
        dispatcher,
        metrics,
        request_topics=[topics.request(s) for s in services],
        create_topics=topics.all(services),
    )
    return EventsUnderTest(events, topics, metrics, registry)
