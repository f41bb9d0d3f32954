"""Circuit breakers on tool calls: the tool's breaker (if it has one) guards the call, so an
upstream that keeps failing is answered at once with "... unavailable (circuit open, retry
in N s)" instead of being waited on. Sits outside the timeout middleware, so timeouts count
as failures; a caller that cancels does not."""

from __future__ import annotations

from collections.abc import Callable

import mcp_types as mt
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.gateway.core.circuit_breaker import BreakerRegistry, CircuitBreaker
from archon_gateway.gateway.core.errors import GatewayError
from archon_gateway.gateway.core.sdk_compat import tool_error_cause

BreakerLookup = Callable[[str], CircuitBreaker | None]


class BreakerMiddleware(Middleware):
    def __init__(self, breaker_for_tool: BreakerLookup) -> None:
        self._breaker_for_tool = breaker_for_tool

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        breaker = self._breaker_for_tool(context.message.name)
        if breaker is None:
            return await call_next(context)
        async with breaker.guard():
            try:
                return await call_next(context)
            except ToolError as exc:
                # FastMCP wraps what a tool raises; the breaker judges the real failure.
                cause = tool_error_cause(exc)
                if not isinstance(cause, GatewayError):
                    raise
            # Raised outside the handler, so it keeps its own __cause__ (the foreign error
            # the log needs) and gains no context from the wrapper.
            raise cause


def breakers_by_owner(
    breakers: BreakerRegistry,
    owner_of: Callable[[str], str | None],
    *,
    prefix: str = "",
) -> BreakerLookup:
    """A lookup giving every tool of one owner (an upstream, a backend) one shared breaker,
    named `prefix + owner` (e.g. "upstream zen"); tools without an owner get none."""

    def lookup(tool: str) -> CircuitBreaker | None:
        owner = owner_of(tool)
        if owner is None:
            return None
        return breakers.get_or_create(prefix + owner)

    return lookup
