"""The node registry (ONEX nodes): registration, heartbeats, and health by timeout."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from archon_gateway.core.errors import NotFound
from archon_gateway.store.models import Node
from archon_gateway.store.schema import node_registrations as nodes


async def register(
    engine: AsyncEngine,
    *,
    name: str,
    node_type: str,
    version: str,
    endpoint: str | None,
    capabilities: Sequence[str],
    metadata: Mapping[str, Any],
    now: float,
) -> str:
    node_id = uuid.uuid4().hex
    async with engine.begin() as connection:
        await connection.execute(
            insert(nodes).values(
                node_id=node_id,
                name=name,
                node_type=node_type,
                version=version,
                endpoint=endpoint,
                capabilities=json.dumps(list(capabilities)),
                metadata=json.dumps(dict(metadata)),
                health="healthy",
                registered_at=now,
                last_heartbeat=now,
            )
        )
    return node_id


async def heartbeat(
    engine: AsyncEngine, node_id: str, health: str, *, now: float, stale_after: float
) -> Node:
    async with engine.begin() as connection:
        result = await connection.execute(
            update(nodes)
            .where(nodes.c.node_id == node_id)
            .values(health=health, last_heartbeat=now)
        )
        if result.rowcount == 0:
            raise _unknown(node_id)
    return await get(engine, node_id, now=now, stale_after=stale_after)


async def get(engine: AsyncEngine, node_id: str, *, now: float, stale_after: float) -> Node:
    async with engine.connect() as connection:
        row = (await connection.execute(select(nodes).where(nodes.c.node_id == node_id))).first()
    if row is None:
        raise _unknown(node_id)
    return _node(row._mapping, now, stale_after)


async def list_nodes(
    engine: AsyncEngine,
    *,
    node_type: str | None,
    healthy: bool | None,
    capability: str | None,
    now: float,
    stale_after: float,
    limit: int,
) -> list[Node]:
    query = select(nodes).order_by(nodes.c.registered_at, nodes.c.name, nodes.c.node_id)
    if node_type is not None:
        query = query.where(nodes.c.node_type == node_type)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    found = [_node(row._mapping, now, stale_after) for row in rows]
    if healthy is not None:
        found = [node for node in found if node.healthy == healthy]
    if capability is not None:
        found = [node for node in found if capability in node.capabilities]
    return found[:limit]


async def deregister(engine: AsyncEngine, node_id: str) -> bool:
    async with engine.begin() as connection:
        result = await connection.execute(delete(nodes).where(nodes.c.node_id == node_id))
    return bool(result.rowcount)


def _unknown(node_id: str) -> NotFound:
    return NotFound(f"no node with id {node_id!r} is registered (node_list shows those that are)")


def _node(row: Any, now: float, stale_after: float) -> Node:
    silent = max(0.0, now - row["last_heartbeat"])
    if silent > stale_after:
        healthy, status = False, f"no heartbeat for {silent:.0f} s (timeout {stale_after:g} s)"
    elif row["health"] != "healthy":
        healthy, status = False, f"reports {row['health']}"
    else:
        healthy, status = True, "healthy"
    return Node(
        node_id=row["node_id"],
        name=row["name"],
        node_type=row["node_type"],
        version=row["version"],
        endpoint=row["endpoint"],
        capabilities=json.loads(row["capabilities"]),
        metadata=json.loads(row["metadata"]),
        reported_health=row["health"],
        healthy=healthy,
        status=status,
        registered_at=row["registered_at"],
        last_heartbeat=row["last_heartbeat"],
        seconds_since_heartbeat=round(silent, 3),
    )
