"""The store's MCP tools as native tool families: the node registry, pattern lineage and
the admin views of the audit trail and sessions.

They take the running `Store` and plain ports from the composition root: whether a pattern
exists (the pattern store lives in another unit) and who may use an admin tool (the front
door knows the caller). SQLAlchemy loads with the store, not with these tools.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastmcp.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import Field

from archon_gateway.core.errors import NotFound, tool_errors
from archon_gateway.core.tool_family import ADMIN_TAG, HealthProbe, ToolFamily
from archon_gateway.store.models import (
    AuditPage,
    Lineage,
    LineageRecorded,
    Node,
    NodeDeregistered,
    NodeHealth,
    NodeList,
    NodeRegistered,
    NodeType,
    Relation,
    SessionPage,
)
from archon_gateway.store.service import Store

PatternExists = Callable[[str], Awaitable[bool]]

NodeId = Annotated[str, Field(min_length=1, max_length=64, description="from node_register")]
PatternId = Annotated[str, Field(min_length=1, max_length=200, description="a pattern's id")]
Short = Annotated[str, Field(max_length=200)]
Depth = Annotated[int, Field(ge=1, le=100, description="edges to follow at most")]


def _annotations(
    title: str, *, read_only: bool, destructive: bool = False, idempotent: bool = True
) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive if not read_only else None,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


def _tool(method: Callable[..., Any], annotations: ToolAnnotations, *, admin: bool = False) -> Tool:
    return Tool.from_function(method, annotations=annotations, tags={ADMIN_TAG} if admin else None)


class NodeRegistryTools(ToolFamily):
    """node_register/heartbeat/list/get/deregister. A node heard from longer ago than
    `heartbeat_timeout` seconds is reported unhealthy."""

    def __init__(
        self, store: Store, *, heartbeat_timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.heartbeat_timeout = heartbeat_timeout
        self.clock = clock

    def tools(self) -> Sequence[Tool]:
        return [
            _tool(
                self.node_register,
                _annotations("Register a node", read_only=False, idempotent=False),
            ),
            _tool(self.node_heartbeat, _annotations("Node heartbeat", read_only=False)),
            _tool(self.node_list, _annotations("List nodes", read_only=True)),
            _tool(self.node_get, _annotations("Get a node", read_only=True)),
            _tool(
                self.node_deregister,
                _annotations("Deregister a node", read_only=False, destructive=True),
            ),
        ]

    async def node_register(
        self,
        name: Annotated[str, Field(min_length=1, max_length=200)],
        node_type: NodeType,
        version: Annotated[str, Field(min_length=1, max_length=64)],
        endpoint: Annotated[str | None, Field(max_length=500)] = None,
        capabilities: Annotated[list[Short] | None, Field(max_length=100)] = None,
        metadata: Annotated[
            dict[Short, str | int | float | bool | None] | None, Field(max_length=50)
        ] = None,
    ) -> NodeRegistered:
        """Register an ONEX node (effect, compute, reducer or orchestrator); returns its
        node_id. The node should then call node_heartbeat regularly."""
        from archon_gateway.store import nodes

        with tool_errors():
            node_id = await nodes.register(
                await self.store.engine(),
                name=name,
                node_type=node_type,
                version=version,
                endpoint=endpoint,
                capabilities=capabilities or [],
                metadata=metadata or {},
                now=self.clock(),
            )
            return NodeRegistered(node_id=node_id)

    async def node_heartbeat(self, node_id: NodeId, health: NodeHealth = "healthy") -> Node:
        """Tell the registry a node is alive (and how healthy it says it is)."""
        from archon_gateway.store import nodes

        with tool_errors():
            return await nodes.heartbeat(
                await self.store.engine(),
                node_id,
                health,
                now=self.clock(),
                stale_after=self.heartbeat_timeout,
            )

    async def node_list(
        self,
        node_type: NodeType | None = None,
        healthy: bool | None = None,
        capability: Short | None = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 100,
    ) -> NodeList:
        """Registered nodes, oldest first, optionally only of one type, only (un)healthy
        ones, or only those with a capability."""
        from archon_gateway.store import nodes

        with tool_errors():
            found = await nodes.list_nodes(
                await self.store.engine(),
                node_type=node_type,
                healthy=healthy,
                capability=capability,
                now=self.clock(),
                stale_after=self.heartbeat_timeout,
                limit=limit,
            )
            return NodeList(nodes=found, count=len(found))

    async def node_get(self, node_id: NodeId) -> Node:
        """One registered node and its health."""
        from archon_gateway.store import nodes

        with tool_errors():
            return await nodes.get(
                await self.store.engine(),
                node_id,
                now=self.clock(),
                stale_after=self.heartbeat_timeout,
            )

    async def node_deregister(self, node_id: NodeId) -> NodeDeregistered:
        """Remove a node from the registry (deregistered=false if it was not there)."""
        from archon_gateway.store import nodes

        with tool_errors():
            gone = await nodes.deregister(await self.store.engine(), node_id)
            return NodeDeregistered(node_id=node_id, deregistered=gone)


class LineageTools(ToolFamily):
    """pattern_lineage_record/ancestry/descendants/deprecate over the edges in the store;
    `pattern_exists` asks the pattern store whether an id is a pattern."""

    def __init__(
        self,
        store: Store,
        pattern_exists: PatternExists,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pattern_exists = pattern_exists
        self.clock = clock

    def tools(self) -> Sequence[Tool]:
        return [
            _tool(self.pattern_lineage_record, _annotations("Record lineage", read_only=False)),
            _tool(self.pattern_lineage_ancestry, _annotations("Pattern ancestry", read_only=True)),
            _tool(
                self.pattern_lineage_descendants,
                _annotations("Pattern descendants", read_only=True),
            ),
            _tool(
                self.pattern_lineage_deprecate,
                _annotations("Deprecate a pattern", read_only=False),
            ),
        ]

    async def record(
        self, parent_id: str, child_id: str, relation: str, reason: str, author: str
    ) -> LineageRecorded:
        """Record an edge after checking both patterns exist (also used by pattern_update
        and pattern_index with `derived_from`)."""
        from archon_gateway.store import lineage

        for pattern_id in dict.fromkeys((parent_id, child_id)):
            if not await self.pattern_exists(pattern_id):
                raise NotFound(
                    f"no pattern with id {pattern_id!r} in the pattern store "
                    "(index it first; lineage links existing patterns)"
                )
        edge, created = await lineage.record(
            await self.store.engine(),
            parent_id=parent_id,
            child_id=child_id,
            relation=relation,
            reason=reason,
            author=author,
            now=self.clock(),
        )
        return LineageRecorded(edge=edge, created=created)

    async def pattern_lineage_record(
        self,
        parent_id: PatternId,
        child_id: PatternId,
        relation: Relation,
        reason: Annotated[str, Field(max_length=1000)] = "",
        author: Short = "",
    ) -> LineageRecorded:
        """Record that pattern child_id derives from parent_id (modify, merge, fork or
        deprecate). A merge records one edge per parent. Both patterns must exist; an edge
        that would close a cycle is refused, naming the path."""
        with tool_errors():
            return await self.record(parent_id, child_id, relation, reason, author)

    async def pattern_lineage_ancestry(
        self, pattern_id: PatternId, max_depth: Depth = 10
    ) -> Lineage:
        """The patterns a pattern derives from, nearest first, up to max_depth edges away,
        and the edges between them."""
        from archon_gateway.store import lineage

        with tool_errors():
            return await lineage.walk(
                await self.store.engine(), pattern_id, direction="ancestry", max_depth=max_depth
            )

    async def pattern_lineage_descendants(
        self, pattern_id: PatternId, max_depth: Depth = 10
    ) -> Lineage:
        """The patterns derived from a pattern, nearest first, up to max_depth edges away,
        and the edges between them."""
        from archon_gateway.store import lineage

        with tool_errors():
            return await lineage.walk(
                await self.store.engine(), pattern_id, direction="descendants", max_depth=max_depth
            )

    async def pattern_lineage_deprecate(
        self,
        pattern_id: PatternId,
        replaced_by: PatternId,
        reason: Annotated[str, Field(max_length=1000)] = "",
        author: Short = "",
    ) -> LineageRecorded:
        """Mark a pattern deprecated in favour of another (a 'deprecate' edge from the old
        pattern to its replacement)."""
        with tool_errors():
            return await self.record(pattern_id, replaced_by, "deprecate", reason, author)


class AuditTools(ToolFamily):
    """audit_query and session_list: admin tools (tagged so; the front door's admin policy
    decides who may list and call them)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def tools(self) -> Sequence[Tool]:
        return [
            _tool(
                self.audit_query,
                _annotations("Query the audit trail", read_only=True),
                admin=True,
            ),
            _tool(
                self.session_list,
                _annotations("List client sessions", read_only=True),
                admin=True,
            ),
        ]

    def health_probes(self) -> Sequence[HealthProbe]:
        return ()

    async def audit_query(
        self,
        since: Annotated[float | None, Field(description="epoch seconds, inclusive")] = None,
        until: Annotated[float | None, Field(description="epoch seconds, exclusive")] = None,
        principal: Short | None = None,
        action: Short | None = None,
        outcome: Literal["accept", "reject"] | None = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 100,
    ) -> AuditPage:
        """Security audit rows (auth accepts/rejects, admin actions, webhook signature
        failures), newest first. Admin only."""
        from archon_gateway.store import trail

        with tool_errors():
            rows = await trail.audit_rows(
                await self.store.engine(),
                since=since,
                until=until,
                principal=principal,
                action=action,
                outcome=outcome,
                limit=limit,
            )
            return AuditPage(rows=rows, count=len(rows))

    async def session_list(
        self, active: bool | None = None, limit: Annotated[int, Field(ge=1, le=1000)] = 100
    ) -> SessionPage:
        """Client sessions, newest first; active=true only open ones. Admin only."""
        from archon_gateway.store import trail

        with tool_errors():
            rows = await trail.session_rows(await self.store.engine(), active=active, limit=limit)
            return SessionPage(sessions=rows, count=len(rows))
