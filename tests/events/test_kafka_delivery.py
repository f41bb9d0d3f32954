"""Delivery against a real broker: retries, dead letters, malformed records, rebalancing,
a consumer stopped mid-batch, a broker that is down at start and restarted."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from archon_gateway.core.errors import ToolTimeout
from archon_gateway.events.envelope import Envelope
from archon_gateway.events.handlers import Handler
from archon_gateway.events.kafka import KafkaEvents
from tests.events.conftest import Broker
from tests.events.kafka_support import (
    collecting,
    kafka_events,
    produce,
    request,
    short_options,
    unique,
)
from tests.support import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

ECHO = "mixin.recommendation.requested"  # served on the "mixin" topics


def counting_handler(seen: Counter[str], *, delay: float = 0.0) -> Handler:
    async def echo(event: Envelope) -> Any:
        if delay:
            await anyio.sleep(delay)
        seen[event.event_id] += 1
        return {"n": event.payload["n"]}

    return Handler("echo", "mixin", {ECHO: echo})


async def test_a_handler_that_fails_twice_is_retried_and_then_answers(
    kafka_broker: Broker,
) -> None:
    attempts = Counter[str]()

    async def flaky(event: Envelope) -> Any:
        attempts[event.event_id] += 1
        if attempts[event.event_id] <= 2:
            raise ToolTimeout("mixin_recommend", 0.1)
        return {"ok": True}

    prefix = unique("retry")
    under = kafka_events(
        short_options(kafka_broker.bootstrap, unique("g")),
        prefix,
        [Handler("flaky", "mixin", {ECHO: flaky})],
    )
    topics = under.topics
    event_id, value = request(ECHO, {})
    with anyio.fail_after(60):
        async with (
            under.events.running(),
            collecting(kafka_broker.bootstrap, [topics.response("mixin"), topics.dlq]) as out,
        ):
            await under.events.wait_connected()
            await produce(kafka_broker.bootstrap, topics.request("mixin"), [(b"k", value)])
            await out.wait(lambda c: len(c.on(topics.response("mixin"))) == 1)
    response = out.on(topics.response("mixin"))[0]
    assert response["correlation_id"] == event_id
    assert response["event_type"] == "mixin.recommendation.completed"
    assert response["payload"] == {"result": {"ok": True}}
    assert attempts[event_id] == 3
    assert out.on(topics.dlq) == []


async def test_a_handler_that_always_fails_lands_in_the_dlq_with_its_reason(
    kafka_broker: Broker,
) -> None:
    calls = Counter[str]()

    async def broken(event: Envelope) -> Any:
        calls[event.event_id] += 1
        raise ToolTimeout("mixin_recommend", 0.1)

    prefix = unique("dlq")
    under = kafka_events(
        short_options(kafka_broker.bootstrap, unique("g")),
        prefix,
        [Handler("broken", "mixin", {ECHO: broken})],
    )
    topics = under.topics
    event_id, value = request(ECHO, {"n": 1})
    with anyio.fail_after(60):
        async with (
            under.events.running(),
            collecting(kafka_broker.bootstrap, [topics.response("mixin"), topics.dlq]) as out,
        ):
            await under.events.wait_connected()
            await produce(kafka_broker.bootstrap, topics.request("mixin"), [(None, value)])
            await out.wait(lambda c: len(c.on(topics.dlq)) == 1 and c.on(topics.response("mixin")))
    dead = out.on(topics.dlq)[0]["payload"]
    assert dead["attempts"] == 3
    assert dead["reason"] == "failed 3 times: mixin_recommend timed out after 0.1 s"
    assert dead["topic"] == topics.request("mixin")
    assert dead["offset"] == 0
    assert event_id in dead["original"]["text"]
    assert calls[event_id] == 3
    failed = out.on(topics.response("mixin"))[0]
    assert failed["event_type"] == "mixin.recommendation.failed"
    assert failed["payload"]["error"]["kind"] == "ToolTimeout"


async def test_malformed_and_unknown_records_go_to_the_dlq_and_consumption_continues(
    kafka_broker: Broker,
) -> None:
    seen = Counter[str]()
    prefix = unique("bad")
    under = kafka_events(
        short_options(kafka_broker.bootstrap, unique("g")), prefix, [counting_handler(seen)]
    )
    topics = under.topics
    good_id, good = request(ECHO, {"n": 7})
    _, unknown = request("nobody.handles.this", {})
    deep = b'{"event_id":' + b"[" * 100 + b"]" * 100 + b"}"
    records = [(b"k", b"{not json"), (b"k", unknown), (b"k", deep), (b"k", good)]
    with anyio.fail_after(60):
        async with (
            under.events.running(),
            collecting(kafka_broker.bootstrap, [topics.response("mixin"), topics.dlq]) as out,
        ):
            await under.events.wait_connected()
            await produce(kafka_broker.bootstrap, topics.request("mixin"), records)
            await out.wait(lambda c: len(c.on(topics.dlq)) == 3 and c.on(topics.response("mixin")))
    reasons = [event["payload"]["reason"] for event in out.on(topics.dlq)]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "no handler for event type 'nobody.handles.this'"
    assert reasons[2] == "event nests deeper than 32 levels"
    assert out.on(topics.dlq)[0]["payload"]["original"] == {"text": "{not json"}
    assert out.on(topics.response("mixin"))[0]["payload"] == {"result": {"n": 7}}
    assert seen == {good_id: 1}


async def test_a_result_too_large_for_a_record_is_answered_with_an_error_and_consuming_goes_on(
    kafka_broker: Broker,
) -> None:
    async def sized(event: Envelope) -> Any:
        return {"blob": "x" * event.payload["size"]}

    under = kafka_events(
        short_options(kafka_broker.bootstrap, unique("g")),
        unique("big"),
        [Handler("sized", "mixin", {ECHO: sized})],
    )
    topics = under.topics
    huge_id, huge = request(ECHO, {"size": 1_100_000})
    small_id, small = request(ECHO, {"size": 10})
    with anyio.fail_after(60):
        async with (
            under.events.running(),
            collecting(kafka_broker.bootstrap, [topics.response("mixin")]) as out,
        ):
            await under.events.wait_connected()
            await produce(
                kafka_broker.bootstrap, topics.request("mixin"), [(b"k", huge), (b"k", small)]
            )
            await out.wait(lambda c: len(c.on(topics.response("mixin"))) == 2)
    first, second = out.on(topics.response("mixin"))
    assert first["correlation_id"] == huge_id
    assert first["payload"]["error"]["kind"] == "ResponseTooLarge"
    assert "over the 1000000-byte limit" in first["payload"]["error"]["message"]
    assert (second["correlation_id"], second["payload"]) == (
        small_id,
        {"result": {"blob": "x" * 10}},
    )


async def test_events_of_one_key_are_handled_and_answered_in_order_while_keys_overlap(
    kafka_broker: Broker,
) -> None:
    handled: dict[str, list[int]] = {}
    running = 0
    overlap = 0

    async def slow_first(event: Envelope) -> Any:
        nonlocal running, overlap
        running += 1
        overlap = max(overlap, running)
        n, key = event.payload["n"], event.payload["key"]
        await anyio.sleep(0.001 * (9 - n % 10))  # earlier events take longer
        handled.setdefault(key, []).append(n)
        running -= 1
        return {"n": n, "key": key}

    under = kafka_events(
        short_options(kafka_broker.bootstrap, unique("g"), partitions=2),
        unique("order"),
        [Handler("ordered", "mixin", {ECHO: slow_first})],
    )
    topics = under.topics
    keys = [f"k{i}" for i in range(8)]
    records = [
        (key.encode(), request(ECHO, {"n": n, "key": key})[1]) for n in range(25) for key in keys
    ]
    with anyio.fail_after(60):
        async with (
            under.events.running(),
            collecting(kafka_broker.bootstrap, [topics.response("mixin")]) as out,
        ):
            await under.events.wait_connected()
            await produce(kafka_broker.bootstrap, topics.request("mixin"), records)
            await out.wait(lambda c: len(c.on(topics.response("mixin"))) == len(records))
    assert overlap > 1, "keys did not run concurrently"
    answered: dict[str, list[int]] = {}
    for response in out.on(topics.response("mixin")):
        result = response["payload"]["result"]
        answered.setdefault(result["key"], []).append(result["n"])
    assert handled == answered == {key: list(range(25)) for key in keys}


async def test_two_consumers_in_one_group_split_partitions_and_handle_each_event_once(
    kafka_broker: Broker,
) -> None:
    seen = Counter[str]()
    by_member: list[Counter[str]] = [Counter(), Counter()]
    prefix, group = unique("group"), unique("g")

    def member(index: int) -> KafkaEvents:
        async def echo(event: Envelope) -> Any:
            await anyio.sleep(0.005)
            seen[event.event_id] += 1
            by_member[index][event.event_id] += 1
            return {"n": event.payload["n"]}

        handler = Handler("echo", "mixin", {ECHO: echo})
        return kafka_events(short_options(kafka_broker.bootstrap, group), prefix, [handler]).events

    first, second = member(0), member(1)
    topic = kafka_events(short_options("", ""), prefix, []).topics.request("mixin")
    batches = [[request(ECHO, {"n": i}) for i in range(start, start + 200)] for start in (0, 200)]

    def keyed(batch: list[tuple[str, bytes]]) -> list[tuple[bytes | None, bytes]]:
        return [(str(i % 16).encode(), value) for i, (_, value) in enumerate(batch)]

    with anyio.fail_after(90):
        async with first.running():
            await first.wait_connected()
            await produce(kafka_broker.bootstrap, topic, keyed(batches[0]))
            async with second.running():
                # The second member joins while the first is busy: a rebalance mid-stream.
                await wait_until(lambda: second.status().detail.startswith(("1 ", "2 ", "3 ")))
                await produce(kafka_broker.bootstrap, topic, keyed(batches[1]))
                await wait_until(lambda: len(seen) == 400, within=60)
                assert by_member[1], "the second member got no partitions"
    assert set(seen.values()) == {1}, "an event was handled twice"


async def test_a_consumer_stopped_mid_batch_loses_nothing_after_a_restart(
    kafka_broker: Broker,
) -> None:
    seen = Counter[str]()
    prefix, group = unique("crash"), unique("g")
    options = short_options(kafka_broker.bootstrap, group, commit_interval=0.2)
    values = [request(ECHO, {"n": i}) for i in range(300)]
    stuck = anyio.Event()  # never set: events after the first 100 hang mid-handling

    async def first_100(event: Envelope) -> Any:
        if len(seen) >= 100:
            await stuck.wait()
        seen[event.event_id] += 1
        return {"n": event.payload["n"]}

    first = kafka_events(options, prefix, [Handler("echo", "mixin", {ECHO: first_100})])
    topic = first.topics.request("mixin")
    with anyio.fail_after(90):
        async with first.events.running():
            await first.events.wait_connected()
            await produce(kafka_broker.bootstrap, topic, [(None, v) for _, v in values])
            await wait_until(lambda: len(seen) >= 100)
        # Stopped mid-batch (cancelled: in-flight events are cut, nothing more commits).
        assert len(seen) == 100
        again = kafka_events(options, prefix, [counting_handler(seen)])
        async with again.events.running():
            await wait_until(lambda: len(seen) == 300, within=60)
    assert all(seen[event_id] >= 1 for event_id, _ in values)


async def test_the_consumer_waits_for_a_broker_that_is_down_and_resumes_after_a_restart(
    own_broker: Broker,
) -> None:
    seen = Counter[str]()
    options = short_options(own_broker.bootstrap, unique("g"))
    under = kafka_events(options, unique("restart"), [counting_handler(seen)])
    topic = under.topics.request("mixin")
    with anyio.fail_after(90):
        async with under.events.running():
            await wait_until(lambda: "cannot reach Kafka" in under.events.status().detail)
            assert under.events.status().status == "down"
            own_broker.start()
            await under.events.wait_connected()
            before = [request(ECHO, {"n": i}) for i in range(20)]
            await produce(own_broker.bootstrap, topic, [(None, v) for _, v in before])
            await wait_until(lambda: len(seen) == 20)

            own_broker.kill()
            await wait_until(lambda: under.events.status().status == "down")
            own_broker.start()  # memory storage: empty again, topics included
            await wait_until(lambda: under.events.status().status == "ok", within=30)
            after = [request(ECHO, {"n": i}) for i in range(20)]
            await produce(own_broker.bootstrap, topic, [(None, v) for _, v in after])
            try:
                await wait_until(lambda: len(seen) == 40, within=20)
            except TimeoutError:
                raise AssertionError(f"{len(seen)} {under.events.status()}") from None
    assert set(seen.values()) == {1}
