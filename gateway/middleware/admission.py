"""Admission control: at most N calls of an expensive tool run at once; one more is
refused at once with a clear "busy, try again" error (counted in /metrics as outcome
"busy"), instead of queueing work that would blow the memory bound or the time limit."""

from __future__ import annotations

from collections.abc import Mapping

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.gateway.core.errors import ToolBusy, tool_errors


class AdmissionMiddleware(Middleware):
    def __init__(self, limits: Mapping[str, int]) -> None:
        self._limits = dict(limits)
        self._running: dict[str, int] = {}

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        tool = context.message.name
        limit = self._limits.get(tool)
        if limit is None:
            return await call_next(context)
        running = self._running.get(tool, 0)
        if running >= limit:
            with tool_errors():
                raise ToolBusy(tool, limit)
        self._running[tool] = running + 1
        try:
            return await call_next(context)
        finally:
            self._running[tool] -= 1
