"""Per-tool call counts and latency, and sessions per transport."""

from __future__ import annotations

import time
from typing import Any

import anyio
import mcp_types as mt
from fastmcp.exceptions import NotFoundError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from gateway.metrics import UNKNOWN_TOOL, GatewayMetrics


class MetricsMiddleware(Middleware):
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        transport = context.fastmcp_context.transport if context.fastmcp_context else None
        self._metrics.sessions.labels(transport=transport or "memory").inc()
        return result

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        tool = context.message.name
        outcome = "error"
        started = time.perf_counter()
        try:
            result = await call_next(context)
            outcome = "error" if _is_error(result) else "ok"
            return result
        except NotFoundError:
            # Unknown names are user input: count them under one label.
            tool = UNKNOWN_TOOL
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        finally:
            self._metrics.tool_calls.labels(tool=tool, outcome=outcome).inc()
            self._metrics.tool_latency.labels(tool=tool).observe(time.perf_counter() - started)


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", False))
