"""Calls to each upstream, per interval, in the store's `connection_metrics` (calls, errors,
latency sum/max and buckets): what an operator asks of a flaky upstream after the fact."""

from __future__ import annotations

import time
from collections.abc import Callable

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.store.intervals import ConnectionMetrics


class ConnectionLog(Middleware):
    def __init__(
        self, connections: ConnectionMetrics, upstream_of: Callable[[str], str | None]
    ) -> None:
        self.connections = connections
        self.upstream_of = upstream_of

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        upstream = self.upstream_of(context.message.name)
        if upstream is None:
            return await call_next(context)
        started = time.perf_counter()
        ok = False
        try:
            result = await call_next(context)
            ok = not getattr(result, "is_error", False)
            return result
        finally:
            self.connections.call("upstream", upstream, time.perf_counter() - started, ok=ok)
