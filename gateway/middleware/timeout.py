"""Per-tool time limits that really cancel: the call's task is cancelled at the deadline
(for proxied tools that sends `notifications/cancelled` upstream and frees the session)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.gateway.core.errors import ToolTimeout

TimeoutLookup = Callable[[str], float | None]


class TimeoutMiddleware(Middleware):
    def __init__(self, default: float, lookup: TimeoutLookup = lambda tool: None) -> None:
        self._default = default
        self._lookup = lookup

    def limit_for(self, tool: str) -> float:
        return self._lookup(tool) or self._default

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        tool = context.message.name
        seconds = self.limit_for(tool)
        with anyio.move_on_after(seconds) as scope:
            return await call_next(context)
        assert scope.cancelled_caught
        raise ToolTimeout(tool, seconds)
