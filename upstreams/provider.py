"""Upstream tools as FastMCP components: the pool's catalog, namespaced, and a Tool whose
`run` forwards the call over the upstream's one long-lived session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mcp_types as mt
from fastmcp import Context
from fastmcp.server.dependencies import get_context
from fastmcp.server.providers.base import Provider
from fastmcp.tools.base import Tool, ToolResult
from pydantic import PrivateAttr

from archon_gateway.gateway.core.errors import tool_errors
from archon_gateway.gateway.core.sdk_compat import FastMCPComponent, TaskConfig, VersionSpec
from archon_gateway.upstreams.catalog import UpstreamTool
from archon_gateway.upstreams.connection import ProgressCallback
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.supervisor import Upstream


class ProxiedTool(Tool):
    """An upstream tool. Arguments go through untouched, so the upstream's own validation
    errors come back intact; the result is relayed as the upstream sent it."""

    task_config: TaskConfig = TaskConfig(mode="forbidden")
    _upstream: Upstream = PrivateAttr()
    _tool: UpstreamTool = PrivateAttr()

    @classmethod
    def for_upstream(cls, upstream: Upstream, tool: UpstreamTool) -> ProxiedTool:
        definition = mt.Tool.model_validate(tool.definition)
        proxied = cls(
            name=tool.exposed_name,
            title=definition.title,
            description=definition.description,
            parameters=definition.input_schema,
            output_schema=definition.output_schema,
            annotations=definition.annotations,
            icons=definition.icons,
            tags={upstream.name},
        )
        proxied._upstream, proxied._tool = upstream, tool
        return proxied

    async def run(self, arguments: dict[str, Any], context: Context | None = None) -> ToolResult:
        ctx = context or get_context()
        with tool_errors():
            raw = await self._upstream.call(self._tool, arguments, _progress_relay(ctx))
        return ToolResult.from_mcp_result(mt.CallToolResult.model_validate(raw))


def _progress_relay(ctx: Context) -> ProgressCallback | None:
    """Forward upstream progress only when the caller asked for progress (sent a token)."""
    request = ctx.request_context
    meta = request.meta if request is not None else None
    if not meta or meta.get("progressToken") is None:
        return None

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await ctx.report_progress(progress, total, message)

    return relay


class UpstreamProvider(Provider):
    """Serves the pool's tools. The pool itself is a server resource (see gateway/mcp_server.py)."""

    def __init__(self, pool: UpstreamPool) -> None:
        super().__init__()
        self.pool = pool
        self._tools: dict[tuple[str, str], ProxiedTool] = {}

    def _component(self, upstream: Upstream, tool: UpstreamTool) -> ProxiedTool:
        key = (upstream.name, tool.exposed_name)
        cached = self._tools.get(key)
        if cached is None or cached._tool is not tool:
            cached = self._tools[key] = ProxiedTool.for_upstream(upstream, tool)
        return cached

    async def get_tasks(self) -> Sequence[FastMCPComponent]:
        # FastMCP asks every provider for background-task components while its lifespan
        # starts; the default lists our tools, which would hold the front door until every
        # upstream is ready. Proxied tools never run as background tasks.
        return []

    async def _list_tools(self) -> Sequence[Tool]:
        return [self._component(upstream, tool) for upstream, tool in await self.pool.tools()]

    async def _get_tool(self, name: str, version: VersionSpec | None = None) -> Tool | None:
        found = await self.pool.find(name)
        return self._component(*found) if found else None
