"""`archon-gateway events tail`: print events as they pass, one line each (for operators)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import anyio
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from archon_gateway.core.errors import Unavailable
from archon_gateway.core.text import one_line
from archon_gateway.events.kafka import KafkaOptions

MAX_SHOWN = 2000  # characters of a value shown per line


def format_record(topic: str, partition: int, offset: int, value: bytes | None) -> str:
    """`time topic[partition]@offset event_type correlation_id payload` (or the raw value,
    cut short, when it is not an envelope)."""
    when = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    where = f"{topic}[{partition}]@{offset}"
    text = (value or b"").decode(errors="replace")
    try:
        event = json.loads(text)
        head = f"{event['event_type']} corr={event['correlation_id']}"
        body = json.dumps(event.get("payload"), separators=(",", ":"))
    except (ValueError, KeyError, TypeError):
        head, body = "(not an envelope)", text
    if len(body) > MAX_SHOWN:
        body = body[:MAX_SHOWN] + "..."
    return f"{when} {where} {head} {body}"


async def tail(
    options: KafkaOptions,
    topics: Sequence[str],
    emit: Callable[[str], None],
    *,
    from_beginning: bool = False,
    started: Callable[[], None] = lambda: None,
) -> None:
    """Follow `topics` (no consumer group: nothing is committed, nothing is taken from the
    gateways) until cancelled."""
    consumer = AIOKafkaConsumer(
        *topics,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **options.client_kwargs(),
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise Unavailable(
            f"cannot reach Kafka at {options.bootstrap_servers}: {one_line(exc)}"
        ) from exc
    try:
        started()
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    emit(format_record(tp.topic, tp.partition, record.offset, record.value))
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await consumer.stop()
