"""Events with the store (#15), against a real broker and a real SQLite file: node events
update the store's node registry (the same registry as the node_* tools), and every handled
event is counted in the store's `event_metrics` rows per event type and handler."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from archon_gateway.events.topics import Topics
from archon_gateway.gateway.app import build_gateway
from tests.events.conftest import Broker
from tests.events.kafka_support import collecting, produce, request, unique
from tests.events.test_gateway_events import events_consuming, kafka_settings
from tests.support import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


def table(database: Path, query: str) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(query)]


async def test_node_events_update_the_registry_and_every_event_is_counted_in_the_store(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    prefix = unique("nodes")
    topics = Topics(prefix)
    server = build_gateway(kafka_settings(tmp_path, kafka_broker, prefix))
    nodes, responses = topics.request("node-registry"), topics.response("node-registry")
    register_id, register = request(
        "node.register.requested",
        {"name": "thing", "node_type": "effect", "version": "1.0.0", "capabilities": ["retry"]},
    )
    _, nameless = request("node.register.requested", {"node_type": "effect", "version": "1"})

    def answer(out: Any, correlation_id: str) -> dict[str, Any] | None:
        found = [e for e in out.on(responses) if e["correlation_id"] == correlation_id]
        return found[0]["payload"] if found else None

    with anyio.fail_after(90):
        async with (
            Client(server) as client,
            collecting(kafka_broker.bootstrap, [responses, topics.dlq]) as out,
        ):
            await wait_until(lambda: events_consuming(server), within=30)
            await produce(kafka_broker.bootstrap, nodes, [(b"thing", register), (b"x", nameless)])
            await out.wait(lambda c: len(c.on(responses)) == 2)
            registered = answer(out, register_id)
            assert registered is not None
            node_id = registered["result"]["node_id"]
            beat_id, beat = request(
                "node.heartbeat.requested", {"node_id": node_id, "health": "degraded"}
            )
            await produce(kafka_broker.bootstrap, nodes, [(b"thing", beat), (b"thing", b"{oops")])
            await out.wait(lambda c: len(c.on(responses)) == 3 and len(c.on(topics.dlq)) == 1)
            listed = (await client.call_tool("node_list", {})).structured_content
            gone_id, gone = request("node.deregister.requested", {"node_id": node_id})
            await produce(kafka_broker.bootstrap, nodes, [(b"thing", gone)])
            await out.wait(lambda c: len(c.on(responses)) == 4)
            after = (await client.call_tool("node_list", {})).structured_content
    assert listed is not None
    assert after is not None
    (node,) = listed["nodes"]
    assert (node["node_id"], node["name"], node["capabilities"]) == (node_id, "thing", ["retry"])
    assert node["reported_health"] == "degraded"
    assert answer(out, beat_id) == {"result": node | {"seconds_since_heartbeat": ANY}}
    assert answer(out, gone_id) == {"result": {"node_id": node_id, "deregistered": True}}
    assert after["nodes"] == []
    # Flushed when the gateway stopped: one row per event type and handler.
    rows = table(
        tmp_path / "archon.db",
        "SELECT event_type, handler, processed, failed, retried, dead_lettered"
        " FROM event_metrics ORDER BY event_type",
    )
    assert rows == [
        row("_malformed_", "_none_", dead_lettered=1),
        row("node.deregister.requested", "node_registry", processed=1),
        row("node.heartbeat.requested", "node_registry", processed=1),
        row("node.register.requested", "node_registry", processed=1, failed=1),
    ]
    latency = table(tmp_path / "archon.db", "SELECT latency_sum, latency_max FROM event_metrics")
    assert all(r["latency_max"] <= r["latency_sum"] for r in latency)


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


def row(event_type: str, handler: str, **counts: int) -> dict[str, Any]:
    base = {"processed": 0, "failed": 0, "retried": 0, "dead_lettered": 0}
    return {"event_type": event_type, "handler": handler, **base, **counts}
