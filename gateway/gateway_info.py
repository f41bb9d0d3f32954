"""`gateway_info`, about the gateway itself (native, so it proves the whole path end to end).
Open to every caller the auth mode admits: it is not one of the admin tools
(gateway/admin_policy.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastmcp import FastMCP
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from archon_gateway.core.health import ComponentRegistry
from archon_gateway.core.version import __version__
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.upstreams.state import UpstreamInfo


class ComponentInfo(BaseModel):
    status: str
    detail: str = ""


class Counts(BaseModel):
    tools: int
    tool_calls: dict[str, int]
    sessions: dict[str, int]


class GatewayInfo(BaseModel):
    name: str
    version: str
    transports: list[str]
    uptime_s: float
    status: str
    components: dict[str, ComponentInfo]
    counts: Counts
    upstreams: dict[str, UpstreamInfo] = {}
    # Per catalog profile: its mode, the tools that exist for it, what tools/list shows.
    profiles: dict[str, dict[str, int | str]] = {}


def add_admin_tools(
    server: FastMCP,
    transports: list[str],
    metrics: GatewayMetrics,
    components: ComponentRegistry,
    upstream_details: Callable[[], dict[str, UpstreamInfo]] = dict,
    upstream_tool_names: Callable[[], Iterable[str]] = tuple,
    *,
    profile_counts: Callable[[Iterable[str]], dict[str, dict[str, int | str]]] | None = None,
) -> None:
    """`upstream_tool_names` gives the upstream tools as last listed: counting them must
    not start lazily started upstreams or wait for slow ones."""

    @server.tool(
        name="gateway_info",
        annotations=ToolAnnotations(
            title="Gateway info",
            read_only_hint=True,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    async def gateway_info() -> GatewayInfo:
        """Describe this Archon gateway: version, transports served, component health,
        counts of tools, tool calls (by outcome) and sessions (by transport) since start,
        and each upstream's state (pid, restarts, last error, last ping, tools)."""
        snapshot = components.snapshot()
        # The server's own tools straight from its local provider (the list middleware
        # would re-dereference every schema, and a count needs names only).
        local = await server.local_provider.list_tools()
        tools = {tool.name for tool in local} | set(upstream_tool_names())
        return GatewayInfo(
            name=server.name,
            version=__version__,
            transports=transports,
            uptime_s=round(metrics.uptime(), 3),
            status=components.overall(snapshot),
            components={
                name: ComponentInfo(status=item.status, detail=item.detail)
                for name, item in snapshot.items()
            },
            counts=Counts(
                tools=len(tools),
                tool_calls=metrics.tool_call_totals(),
                sessions=metrics.session_totals(),
            ),
            upstreams=upstream_details(),
            profiles=profile_counts(tools) if profile_counts is not None else {},
        )
