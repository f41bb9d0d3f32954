"""Backpressure against a real broker: a partition with more records in flight than its
bound is paused (nothing more is fetched from it), and resumed once they drain; no event
is lost or handled twice on the way."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from archon_gateway.events.envelope import Envelope
from archon_gateway.events.handlers import Handler
from tests.events.conftest import Broker
from tests.events.kafka_support import (
    EventsUnderTest,
    collecting,
    kafka_events,
    produce,
    request,
    short_options,
    unique,
)
from tests.support import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

ECHO = "mixin.recommendation.requested"
EVENTS = 100


def sample(under: EventsUnderTest, name: str) -> float:
    return under.registry.get_sample_value(name) or 0.0


async def fill_and_drain(
    broker: Broker, *, partitions: int, partition_bound: int, overall_bound: int
) -> tuple[EventsUnderTest, Counter[str], list[str], float, float]:
    """Produce EVENTS requests to a consumer whose handler holds every event until the
    consumer has paused; returns the consumer, the handled counts, the produced ids, and
    the paused-partitions gauge and in-flight gauge seen while it was held."""
    handled = Counter[str]()
    started = 0
    gate = anyio.Event()

    async def held(event: Envelope) -> Any:
        nonlocal started
        started += 1
        await gate.wait()
        handled[event.event_id] += 1
        return {"n": event.payload["n"]}

    options = short_options(
        broker.bootstrap,
        unique("g"),
        partitions=partitions,
        fetch_max_records=5,
        partition_concurrency=partition_bound,
        max_buffered=overall_bound,
    )
    under = kafka_events(options, unique("bp"), [Handler("held", "mixin", {ECHO: held})])
    topics = under.topics
    sent = [request(ECHO, {"n": i}) for i in range(EVENTS)]
    with anyio.fail_after(90):
        async with (
            under.events.running(),
            collecting(broker.bootstrap, [topics.response("mixin")]) as out,
        ):
            await under.events.wait_connected()
            # Distinct keys: no record waits for another of its key, all run at once.
            records = [(str(i).encode(), value) for i, (_, value) in enumerate(sent)]
            await produce(broker.bootstrap, topics.request("mixin"), records)
            await wait_until(lambda: sample(under, "archon_event_partitions_paused") > 0)
            paused = sample(under, "archon_event_partitions_paused")
            in_flight = sample(under, "archon_events_in_flight")
            assert started <= in_flight < EVENTS  # held: fetching stopped short of the rest
            gate.set()
            await out.wait(lambda c: len(c.on(topics.response("mixin"))) == EVENTS)
            await wait_until(lambda: sample(under, "archon_event_partitions_paused") == 0)
    return under, handled, [event_id for event_id, _ in sent], paused, in_flight


async def test_a_partition_over_its_bound_is_paused_and_resumed_when_it_drains(
    kafka_broker: Broker,
) -> None:
    under, handled, ids, paused, in_flight = await fill_and_drain(
        kafka_broker, partitions=1, partition_bound=10, overall_bound=5_000
    )
    assert paused == 1
    # Batches of at most 5 records: paused at the first batch that reached 10.
    assert 10 <= in_flight < 15
    assert sample(under, "archon_event_partition_pauses_total") >= 1
    # Resumed: every event was fetched and handled, none twice.
    assert sorted(handled) == sorted(ids)
    assert set(handled.values()) == {1}


async def test_reaching_the_overall_bound_pauses_every_partition(kafka_broker: Broker) -> None:
    under, handled, ids, paused, in_flight = await fill_and_drain(
        kafka_broker, partitions=3, partition_bound=1_000, overall_bound=12
    )
    assert paused == 3
    assert 12 <= in_flight < 12 + 3 * 5
    assert sample(under, "archon_event_partition_pauses_total") >= 3
    assert sorted(handled) == sorted(ids)
    assert set(handled.values()) == {1}
