"""Circuit breakers on tool calls (a step of the call pipeline): the tool's breakers (if it
has any) guard the call, so a dependency that keeps failing is answered at once with
"... unavailable (circuit open, retry in N s)" instead of being waited on. Sits outside the
time limit, so timeouts count as failures; a caller that cancels does not.

An upstream tool has two breakers of different sizes (`upstream_breakers`): the upstream's
own ("upstream zen"), which counts only upstream-wide faults (it crashed, refused the
connection, the transport broke), and the tool's ("tool zen_chat"), which counts that tool's
own timeouts and failed calls. Five timeouts of one hung tool so open only that tool's
breaker; the upstream's other tools keep working."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from fastmcp.exceptions import ToolError

from archon_gateway.core.circuit_breaker import BreakerRegistry, CircuitBreaker
from archon_gateway.core.errors import (
    CircuitOpen,
    GatewayError,
    ToolTimeout,
    UpstreamCallFailed,
    UpstreamUnavailable,
)
from archon_gateway.core.sdk_compat import tool_error_cause
from archon_gateway.gateway.call_context import CallContext, Next

# One breaker, several (outermost first), or none.
BreakerLookup = Callable[[str], CircuitBreaker | Sequence[CircuitBreaker] | None]

# What the upstream-wide breaker ignores: one tool's own trouble, and a tool breaker's refusal.
_TOOL_FAULTS: tuple[type[BaseException], ...] = (ToolTimeout, UpstreamCallFailed, CircuitOpen)
# What a tool's breaker ignores: the whole upstream being down is the upstream breaker's.
_UPSTREAM_FAULTS: tuple[type[BaseException], ...] = (UpstreamUnavailable, CircuitOpen)


class BreakerGuard:
    def __init__(self, breaker_for_tool: BreakerLookup) -> None:
        self.breaker_for_tool = breaker_for_tool

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        found = self.breaker_for_tool(call.tool)
        if found is None:
            return await call_next(call)
        breakers = [found] if isinstance(found, CircuitBreaker) else list(found)
        async with AsyncExitStack() as guards:
            for breaker in breakers:
                await guards.enter_async_context(breaker.guard())
            try:
                return await call_next(call)
            except ToolError as exc:
                # FastMCP wraps what a tool raises; the breakers judge the real failure.
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
    """A lookup giving every tool of one owner (a backend) one shared breaker, named
    `prefix + owner`; tools without an owner get none."""

    def lookup(tool: str) -> CircuitBreaker | None:
        owner = owner_of(tool)
        if owner is None:
            return None
        return breakers.get_or_create(prefix + owner)

    return lookup


def upstream_breakers(
    breakers: BreakerRegistry, upstream_of: Callable[[str], str | None]
) -> BreakerLookup:
    """For an upstream tool: "upstream <name>" (upstream-wide faults) around "tool <tool>"
    (that tool's timeouts and failed calls); native tools get none."""

    def lookup(tool: str) -> list[CircuitBreaker] | None:
        upstream = upstream_of(tool)
        if upstream is None:
            return None
        return [
            breakers.get_or_create(f"upstream {upstream}", exclude=_TOOL_FAULTS),
            breakers.get_or_create(f"tool {tool}", exclude=_UPSTREAM_FAULTS),
        ]

    return lookup
