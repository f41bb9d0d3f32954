"""A broker that lost its data (Tansu with memory storage, restarted in the test): offsets
beyond its new log are read again from the earliest offset, and publishing while it is
down fails at once with the documented message."""

from __future__ import annotations

import logging
from collections import Counter

import anyio
import pytest

from archon_gateway.core.errors import BrokerUnavailable
from tests.events.conftest import Broker
from tests.events.kafka_support import (
    collecting,
    commit_offsets,
    committed_offsets,
    kafka_events,
    produce,
    request,
    short_options,
    unique,
)
from tests.events.test_kafka_delivery import ECHO, counting_handler
from tests.support import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

PARTITIONS = 4
KAFKA_LOG = "archon_gateway.events.kafka"


def keyed(values: list[tuple[str, bytes]]) -> list[tuple[bytes | None, bytes]]:
    # 16 keys, each always on the same partition: every partition holds fewer records after
    # the restart than it had committed before it, whatever the partitioner does.
    return [(str(i % 16).encode(), value) for i, (_, value) in enumerate(values)]


async def test_offsets_past_a_wiped_brokers_log_reset_to_earliest_and_every_new_request_is_answered(
    own_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=KAFKA_LOG)
    seen = Counter[str]()
    prefix, group = unique("lost"), unique("g")
    options = short_options(own_broker.bootstrap, group, partitions=PARTITIONS)
    first = kafka_events(options, prefix, [counting_handler(seen)])
    topics = first.topics
    topic = topics.request("mixin")
    before = [request(ECHO, {"n": i}) for i in range(400)]
    own_broker.start()
    with anyio.fail_after(120):
        async with first.events.running():
            await first.events.wait_connected()
            await produce(own_broker.bootstrap, topic, keyed(before))

            async def all_committed() -> bool:
                found = await committed_offsets(own_broker.bootstrap, group, topic, PARTITIONS)
                return sum(found.values()) == len(before)

            await wait_until(all_committed, within=30)
        stale = await committed_offsets(own_broker.bootstrap, group, topic, PARTITIONS)

        # The broker restarts empty; the group's offsets outlive its log (as when a member
        # commits what it held across the restart).
        own_broker.kill()
        own_broker.start()
        await commit_offsets(own_broker.bootstrap, group, topic, stale, PARTITIONS)

        after = [request(ECHO, {"n": i}) for i in range(244)]
        again = kafka_events(options, prefix, [counting_handler(seen)])
        async with (
            again.events.running(),
            collecting(own_broker.bootstrap, [topics.response("mixin")]) as out,
        ):
            await again.events.wait_connected()
            await produce(own_broker.bootstrap, topic, keyed(after))
            await out.wait(lambda c: len(c.on(topics.response("mixin"))) == len(after))
            # Nothing of the old log is committed over the new one.
            await wait_until(
                lambda: _committed_sum(own_broker, group, topic, len(after)), within=30
            )

    answered = {event["correlation_id"] for event in out.on(topics.response("mixin"))}
    assert answered == {event_id for event_id, _ in after}
    assert all(seen[event_id] == 1 for event_id, _ in after)
    resets = again.registry.get_sample_value("archon_event_offset_resets_total", {"topic": topic})
    assert resets == len(stale)
    warnings = [r for r in caplog.records if "beyond the log" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{topic}[" in warnings[0].getMessage()


async def _committed_sum(broker: Broker, group: str, topic: str, expected: int) -> bool:
    found = await committed_offsets(broker.bootstrap, group, topic, PARTITIONS)
    return sum(found.values()) == expected


async def test_publishing_while_the_broker_is_down_fails_at_once_saying_kafka_is_not_connected(
    own_broker: Broker,
) -> None:
    # The production request timeout (10 s): a send without its own bound waits that long.
    options = short_options(own_broker.bootstrap, unique("g"), request_timeout_ms=10_000)
    under = kafka_events(options, unique("pub"), [counting_handler(Counter())])
    topic = under.topics.request("mixin")
    own_broker.start()
    with anyio.fail_after(60):
        async with under.events.running():
            await under.events.wait_connected()
            await under.events.publish(topic, None, b"{}")

            own_broker.kill()
            # Before the gateway noticed: the send is bounded.
            with pytest.raises(BrokerUnavailable) as unacknowledged:
                await under.events.publish(topic, None, b"{}")
            await wait_until(lambda: under.events.status().status == "down")
            # Once it noticed: refused without trying.
            with pytest.raises(BrokerUnavailable) as refused:
                await under.events.publish(topic, None, b"{}")

            own_broker.start()
            await wait_until(lambda: under.events.connected, within=30)

            async def served_again() -> bool:
                # The first send after a restart may still meet the broker's old state
                # (an UnknownError while it reloads): served again within the bound.
                try:
                    await under.events.publish(topic, None, b"{}")
                except BrokerUnavailable:
                    return False
                return True

            await wait_until(served_again, within=30)
    assert str(unacknowledged.value).startswith("Kafka is not connected (")
    assert "no acknowledgement within 2 s" in str(unacknowledged.value)
    assert str(refused.value).startswith("Kafka is not connected (")


# Positions handed to the periodic commit (refused: the group forgot this member), or still
# waiting for it when the partitions are revoked.
@pytest.mark.parametrize("commit_interval", [0.2, 30.0], ids=["commit-refused", "uncommitted"])
async def test_a_gateway_that_outlives_a_quick_broker_restart_commits_nothing_of_the_lost_log(
    own_broker: Broker, commit_interval: float
) -> None:
    # The broker is back before the gateway's watcher (every 2 s, as in production) sees it
    # gone: the consumer rejoins a group that forgot it, holding positions of the lost log.
    seen = Counter[str]()
    options = short_options(
        own_broker.bootstrap,
        unique("g"),
        partitions=PARTITIONS,
        watch_interval=2.0,
        commit_interval=commit_interval,
    )
    under = kafka_events(options, unique("quick"), [counting_handler(seen)])
    topic = under.topics.request("mixin")
    before = [request(ECHO, {"n": i}) for i in range(300)]
    after = [request(ECHO, {"n": i}) for i in range(244)]
    own_broker.start()
    with anyio.fail_after(90):
        async with under.events.running():
            await under.events.wait_connected()
            await produce(own_broker.bootstrap, topic, keyed(before))
            await wait_until(lambda: len(seen) == len(before))
            own_broker.kill()
            own_broker.start()
            await produce(own_broker.bootstrap, topic, keyed(after))
            await wait_until(lambda: all(seen[event_id] for event_id, _ in after), within=60)
    # Each partition was read from the earliest at most once: positions of the lost log were
    # never committed to the new one (where they would be found, and reset, again).
    resets = under.registry.get_sample_value("archon_event_offset_resets_total", {"topic": topic})
    assert (resets or 0) <= PARTITIONS
