"""Pattern lineage: a directed acyclic graph of edges parent -> child, walked with recursive
CTEs (the same SQL on SQLite and PostgreSQL).

Recording an edge inserts it and then checks, in the same transaction, that the parent is
not reachable from the child (which would close a cycle); writers are serialised (SQLite by
its write lock, taken by the insert; PostgreSQL by a transaction advisory lock), so two
gateways recording edges at once cannot close a cycle between them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archon_gateway.core.errors import InvalidArgument
from archon_gateway.store.models import Lineage, LineageEdge, LineageNode
from archon_gateway.store.schema import pattern_lineage_edges as edges

_PG_LINEAGE_LOCK = 0x4C494E45  # "LINE"

# The edges reachable from :start, each with its smallest depth, in one statement (UNION
# keeps the walk finite even if a cycle slipped in; max_depth bounds it).
_WALK = """
WITH RECURSIVE walk(id, node, depth) AS (
    SELECT id, {next}, 1 FROM pattern_lineage_edges WHERE {this} = :start
    UNION
    SELECT e.id, e.{next}, w.depth + 1 FROM pattern_lineage_edges e
    JOIN walk w ON e.{this} = w.node
    WHERE w.depth < :max_depth
)
SELECT e.parent_id, e.child_id, e.relation, e.reason, e.author, e.created_at, w.depth
FROM (SELECT id, MIN(depth) AS depth FROM walk GROUP BY id) w
JOIN pattern_lineage_edges e ON e.id = w.id
ORDER BY w.depth, e.created_at, e.id
"""
_DOWN = text(_WALK.format(this="parent_id", next="child_id"))
_UP = text(_WALK.format(this="child_id", next="parent_id"))
# Everything reachable below :start, however deep (for the cycle check).
_REACHABLE = text(
    """
WITH RECURSIVE reach(node) AS (
    SELECT child_id FROM pattern_lineage_edges WHERE parent_id = :start
    UNION
    SELECT e.child_id FROM pattern_lineage_edges e JOIN reach r ON e.parent_id = r.node
)
SELECT node FROM reach
"""
)


async def record(
    engine: AsyncEngine,
    *,
    parent_id: str,
    child_id: str,
    relation: str,
    reason: str,
    author: str,
    now: float,
) -> tuple[LineageEdge, bool]:
    """Record parent -> child; (the edge, whether it is new). InvalidArgument names the
    path when the edge would close a cycle."""
    if parent_id == child_id:
        raise InvalidArgument(f"pattern {parent_id!r} cannot derive from itself")
    values: dict[str, Any] = {
        "parent_id": parent_id,
        "child_id": child_id,
        "relation": relation,
        "reason": reason,
        "author": author,
        "created_at": now,
    }
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LINEAGE_LOCK}
            )
        existing = await _edge(connection, parent_id, child_id)
        if existing is not None:
            return existing, False
        try:
            await connection.execute(edges.insert().values(**values))
        except IntegrityError:  # recorded by another writer just now (SQLite, unlocked read)
            await connection.rollback()
            async with engine.connect() as again:
                found = await _edge(again, parent_id, child_id)
            if found is None:
                raise
            return found, False
        below = {row[0] for row in await connection.execute(_REACHABLE, {"start": child_id})}
        if parent_id in below:
            path = await _path(connection, child_id, parent_id, below)
            raise InvalidArgument(
                f"edge {parent_id} -> {child_id} would create a cycle: "
                + " -> ".join([parent_id, *path])
            )
    return LineageEdge.model_validate(values), True


async def walk(engine: AsyncEngine, pattern_id: str, *, direction: str, max_depth: int) -> Lineage:
    ancestry = direction == "ancestry"
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                _UP if ancestry else _DOWN, {"start": pattern_id, "max_depth": max_depth + 1}
            )
        ).all()
    depths: dict[str, int] = {}
    edges_found: list[LineageEdge] = []
    for row in rows:
        item = row._mapping
        if item["depth"] > max_depth:
            continue
        edges_found.append(_as_edge(item))
        node = item["parent_id"] if ancestry else item["child_id"]
        if node != pattern_id:
            depths.setdefault(node, item["depth"])
    nodes = sorted(depths.items(), key=lambda pair: (pair[1], pair[0]))
    return Lineage(
        pattern_id=pattern_id,
        direction="ancestry" if ancestry else "descendants",
        max_depth=max_depth,
        nodes=[LineageNode(pattern_id=node, depth=depth) for node, depth in nodes],
        edges=edges_found,
        truncated=any(row._mapping["depth"] > max_depth for row in rows),
    )


async def _edge(connection: AsyncConnection, parent_id: str, child_id: str) -> LineageEdge | None:
    row = (
        await connection.execute(
            select(edges).where(edges.c.parent_id == parent_id, edges.c.child_id == child_id)
        )
    ).first()
    return _as_edge(row._mapping) if row is not None else None


async def _path(connection: AsyncConnection, start: str, goal: str, within: set[str]) -> list[str]:
    """A shortest path start -> ... -> goal through the nodes in `within` (breadth first)."""
    rows = (
        await connection.execute(
            select(edges.c.parent_id, edges.c.child_id).where(
                edges.c.parent_id.in_([start, *within])
            )
        )
    ).all()
    children: dict[str, list[str]] = {}
    for parent, child in rows:
        children.setdefault(parent, []).append(child)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for child in children.get(node, []):
            if child not in came_from and child != start:
                came_from[child] = node
                queue.append(child)
    path = [goal]
    while path[-1] != start:
        path.append(came_from[path[-1]])
    return list(reversed(path))


def _as_edge(row: Any) -> LineageEdge:
    return LineageEdge(
        parent_id=row["parent_id"],
        child_id=row["child_id"],
        relation=row["relation"],
        reason=row["reason"],
        author=row["author"],
        created_at=row["created_at"],
    )
