"""The store's MCP tools (node registry, pattern lineage, admin views) through FastMCP's
in-memory client, on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from archon_gateway.core.health import ComponentRegistry
from archon_gateway.gateway.app import add_tool_families, build_gateway
from archon_gateway.gateway.call_pipeline import as_middleware
from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings
from archon_gateway.store.service import Store
from archon_gateway.store.tools import AuditTools, LineageTools, NodeRegistryTools
from tests.store.test_store_engines import count_rows

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


PATTERNS = {f"p{n}" for n in range(20)}


async def known_pattern(pattern_id: str) -> bool:
    return pattern_id in PATTERNS


@asynccontextmanager
async def store_client(url: str, clock: Clock | None = None) -> AsyncIterator[Client[Any]]:
    store = Store(url, linger=0.01)
    server = GatewayServer("store-test")
    server.add_middleware(as_middleware(TranslateErrors()))
    server.add_lifetime(store.running)
    families = [
        NodeRegistryTools(store, heartbeat_timeout=30, clock=clock or time.time),
        LineageTools(store, known_pattern),
        AuditTools(store),
    ]
    add_tool_families(server, ComponentRegistry(), families)
    with anyio.fail_after(60):
        async with Client(server) as client:
            yield client


async def call(client: Client[Any], tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    return result.structured_content


async def error_of(client: Client[Any], tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error, result
    return str(result.content[0].text)  # type: ignore[union-attr]


async def test_nodes_register_beat_list_and_turn_unhealthy_after_the_heartbeat_timeout(
    database_url: str,
) -> None:
    clock = Clock()
    async with store_client(database_url, clock) as client:
        first = await call(
            client,
            "node_register",
            name="indexer",
            node_type="effect",
            version="1.0",
            capabilities=["index", "search"],
            metadata={"zone": "a"},
        )
        second = await call(client, "node_register", name="sum", node_type="reducer", version="2")
        listed = await call(client, "node_list")
        assert [node["name"] for node in listed["nodes"]] == ["indexer", "sum"]
        assert all(node["healthy"] for node in listed["nodes"])
        by_capability = await call(client, "node_list", capability="search")
        assert [node["node_id"] for node in by_capability["nodes"]] == [first["node_id"]]

        clock.now += 31
        await call(client, "node_heartbeat", node_id=second["node_id"])
        unhealthy = await call(client, "node_list", healthy=False)
        assert [node["node_id"] for node in unhealthy["nodes"]] == [first["node_id"]]
        assert "no heartbeat for 31 s" in unhealthy["nodes"][0]["status"]
        degraded = await call(
            client, "node_heartbeat", node_id=second["node_id"], health="degraded"
        )
        assert degraded["healthy"] is False
        assert degraded["status"] == "reports degraded"

        gone = await call(client, "node_deregister", node_id=first["node_id"])
        assert gone == {"node_id": first["node_id"], "deregistered": True}
        assert "no node with id" in await error_of(client, "node_get", node_id=first["node_id"])
        assert "no node with id" in await error_of(client, "node_heartbeat", node_id="nope")


async def test_a_wrong_node_type_is_refused_naming_the_choices(database_url: str) -> None:
    async with store_client(database_url) as client:
        message = await error_of(
            client, "node_register", name="x", node_type="transformer", version="1"
        )
        assert "node_type" in message
        assert "effect" in message


async def test_lineage_ancestry_and_descendants_follow_edges_to_the_depth_asked(
    database_url: str,
) -> None:
    async with store_client(database_url) as client:
        for parent, child in [("p0", "p1"), ("p1", "p2"), ("p2", "p3"), ("p9", "p2")]:
            recorded = await call(
                client,
                "pattern_lineage_record",
                parent_id=parent,
                child_id=child,
                relation="merge" if parent == "p9" else "modify",
                reason="why",
                author="ada",
            )
            assert recorded["created"] is True
        again = await call(
            client, "pattern_lineage_record", parent_id="p0", child_id="p1", relation="modify"
        )
        assert again["created"] is False

        ancestry = await call(client, "pattern_lineage_ancestry", pattern_id="p3")
        assert [(n["pattern_id"], n["depth"]) for n in ancestry["nodes"]] == [
            ("p2", 1),
            ("p1", 2),
            ("p9", 2),
            ("p0", 3),
        ]
        assert len(ancestry["edges"]) == 4
        assert ancestry["truncated"] is False
        shallow = await call(client, "pattern_lineage_ancestry", pattern_id="p3", max_depth=1)
        assert [n["pattern_id"] for n in shallow["nodes"]] == ["p2"]
        assert shallow["truncated"] is True

        below = await call(client, "pattern_lineage_descendants", pattern_id="p0")
        assert [(n["pattern_id"], n["depth"]) for n in below["nodes"]] == [
            ("p1", 1),
            ("p2", 2),
            ("p3", 3),
        ]
        deprecated = await call(
            client, "pattern_lineage_deprecate", pattern_id="p3", replaced_by="p4"
        )
        assert deprecated["edge"]["relation"] == "deprecate"


async def test_an_edge_that_would_close_a_cycle_is_refused_naming_the_path(
    database_url: str,
) -> None:
    async with store_client(database_url) as client:
        for parent, child in [("p0", "p1"), ("p1", "p2"), ("p2", "p3")]:
            await call(
                client,
                "pattern_lineage_record",
                parent_id=parent,
                child_id=child,
                relation="fork",
            )
        message = await error_of(
            client, "pattern_lineage_record", parent_id="p3", child_id="p0", relation="modify"
        )
        assert message == "edge p3 -> p0 would create a cycle: p3 -> p0 -> p1 -> p2 -> p3"
        itself = await error_of(
            client, "pattern_lineage_record", parent_id="p5", child_id="p5", relation="fork"
        )
        assert "cannot derive from itself" in itself
        below = await call(client, "pattern_lineage_descendants", pattern_id="p3")
        assert below["nodes"] == []


async def test_lineage_of_unknown_patterns_is_refused_naming_the_pattern(
    database_url: str,
) -> None:
    async with store_client(database_url) as client:
        message = await error_of(
            client, "pattern_lineage_record", parent_id="p0", child_id="ghost", relation="fork"
        )
        assert "no pattern with id 'ghost' in the pattern store" in message
        relation = await error_of(
            client, "pattern_lineage_record", parent_id="p0", child_id="p1", relation="copy"
        )
        assert "relation" in relation


async def test_audit_query_filters_rows_the_sink_wrote(database_url: str) -> None:
    store = Store(database_url, linger=0.01)
    now = time.time()
    async with store.running():
        for n, outcome in enumerate(["accept", "reject", "accept"]):
            store.append(
                "security_audit_log",
                {
                    "at": now + n,
                    "principal": "service",
                    "action": "auth",
                    "outcome": outcome,
                    "reason": "r",
                    "tool": "",
                    "transport": "http",
                    "path": "/mcp",
                    "remote": "",
                    "request_id": "",
                },
            )
    async with store_client(database_url) as client:
        rejects = await call(client, "audit_query", outcome="reject")
        assert rejects["count"] == 1
        newest = await call(client, "audit_query", limit=2)
        assert [row["at"] for row in newest["rows"]] == [now + 2, now + 1]
        assert (await call(client, "audit_query", since=now + 1, until=now + 2))["count"] == 1
        sessions = await call(client, "session_list", active=True)
        assert sessions == {"sessions": [], "count": 0}


async def test_two_gateways_on_one_database_registering_and_recording_at_once_lose_nothing(
    database_url: str,
) -> None:
    """Two stores (two gateways' worth of engines and pools) on one database, writing at
    once: every node and edge lands, and of two edges that together close a cycle exactly
    one is accepted."""
    async with store_client(database_url) as first, store_client(database_url) as second:
        refused: list[str] = []

        async def register(client: Client[Any], who: str) -> None:
            for n in range(15):
                await call(
                    client, "node_register", name=f"{who}{n}", node_type="compute", version="1"
                )

        async def link(client: Client[Any], parent: str, child: str) -> None:
            result = await client.call_tool(
                "pattern_lineage_record",
                {"parent_id": parent, "child_id": child, "relation": "fork"},
                raise_on_error=False,
            )
            if result.is_error:
                refused.append(str(result.content[0].text))  # type: ignore[union-attr]

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(register, first, "a")
            tasks.start_soon(register, second, "b")
            for n in range(1, 10):
                tasks.start_soon(link, first, f"p{n - 1}", f"p{n}")
                tasks.start_soon(link, second, f"p{n + 9}", f"p{n + 10}")
            tasks.start_soon(link, first, "p0", "p19")
            tasks.start_soon(link, second, "p19", "p0")

        nodes = await call(first, "node_list", limit=1000)
        assert nodes["count"] == 30
        assert len(refused) == 1, refused
        assert "would create a cycle" in refused[0]
    assert await count_rows(database_url, "pattern_lineage_edges") == 18 + 1


async def test_pattern_tools_record_derived_from_and_lineage_checks_the_real_pattern_store(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        transport="stdio",  # type: ignore[arg-type]
        data_dir=tmp_path,
        database_url=database_url,  # type: ignore[arg-type]
        enable_external_gateway=False,
    )

    def pattern(pid: str, **extra: Any) -> dict[str, Any]:
        vector = [0.0] * 384
        vector[len(pid) % 384] = 1.0
        return {"id": pid, "name": pid, "text": f"text of {pid}", "embedding": vector, **extra}

    with anyio.fail_after(90):
        async with Client(build_gateway(settings)) as client:
            base = [pattern("base-a"), pattern("base-b")]
            await call(client, "pattern_index", patterns=base)
            derived = [
                pattern("merged", derived_from=["base-a", "base-b"]),
                pattern("orphan", derived_from=["never-indexed"]),
            ]
            result = await call(client, "pattern_index", patterns=derived)
            assert result["indexed"] == ["merged", "orphan"]
            (refused,) = result["lineage_failed"]
            assert refused["id"] == "orphan"
            assert "no pattern with id 'never-indexed'" in refused["error"]
            await call(client, "pattern_update", id="merged", quality=0.9, derived_from=["orphan"])

            ancestry = await call(client, "pattern_lineage_ancestry", pattern_id="merged")
            relations = {(e["parent_id"], e["relation"]) for e in ancestry["edges"]}
            assert relations == {("base-a", "merge"), ("base-b", "merge"), ("orphan", "modify")}
            message = await error_of(
                client, "pattern_update", id="base-a", quality=0.1, derived_from=["merged"]
            )
            assert "would create a cycle: merged -> base-a -> merged" in message
