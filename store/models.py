"""Output shapes of the store's tools (they become the tools' output schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

NodeType = Literal["effect", "compute", "reducer", "orchestrator"]
NodeHealth = Literal["healthy", "degraded", "unhealthy"]
Relation = Literal["modify", "merge", "fork", "deprecate"]


class NodeRegistered(BaseModel):
    node_id: str


class Node(BaseModel):
    node_id: str
    name: str
    node_type: NodeType
    version: str
    endpoint: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    reported_health: NodeHealth = Field(description="what the node last said")
    healthy: bool = Field(description="reported healthy and heard from within the timeout")
    status: str = Field(description="why it is (un)healthy")
    registered_at: float
    last_heartbeat: float
    seconds_since_heartbeat: float


class NodeList(BaseModel):
    nodes: list[Node]
    count: int


class NodeDeregistered(BaseModel):
    node_id: str
    deregistered: bool


class LineageEdge(BaseModel):
    parent_id: str
    child_id: str
    relation: Relation
    reason: str = ""
    author: str = ""
    created_at: float


class LineageRecorded(BaseModel):
    edge: LineageEdge
    created: bool = Field(description="false when the same edge was already recorded")


class LineageNode(BaseModel):
    pattern_id: str
    depth: int = Field(description="edges away from the pattern asked about")


class Lineage(BaseModel):
    pattern_id: str
    direction: Literal["ancestry", "descendants"]
    max_depth: int
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    truncated: bool = Field(description="more lie beyond max_depth")


class AuditRow(BaseModel):
    id: int
    at: float
    principal: str
    action: str
    outcome: str
    reason: str
    tool: str
    transport: str
    path: str
    remote: str
    request_id: str


class AuditPage(BaseModel):
    rows: list[AuditRow]
    count: int


class SessionRow(BaseModel):
    session_key: str
    transport: str
    client_name: str
    client_version: str
    protocol: str
    principal: str
    remote: str
    started_at: float
    ended_at: float | None
    calls: int
    errors: int


class SessionPage(BaseModel):
    sessions: list[SessionRow]
    count: int
