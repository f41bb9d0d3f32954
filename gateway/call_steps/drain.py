"""Graceful shutdown for tool calls: the ones in flight end with a clear error instead of a
cut connection, and new ones are refused while the gateway stops."""

from __future__ import annotations

from typing import Any

import anyio
from fastmcp.exceptions import ToolError

from archon_gateway.gateway.call_context import CallContext, Next


class InFlightCalls:
    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self._draining = False
        self._idle = anyio.Event()

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        if self._draining:
            raise ToolError(f"{call.tool} was not started: the gateway is shutting down")
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                return await call_next(call)
            # Only our own scope's cancellation lands here; any other propagates.
            raise ToolError(f"{call.tool} was stopped: the gateway is shutting down")
        finally:
            self._scopes.discard(scope)
            if self._draining and not self._scopes:
                self._idle.set()

    def restart(self) -> None:
        """Accept calls again (a server served, stopped, and is served again)."""
        self._draining = False
        self._idle = anyio.Event()

    async def drain(self, within: float) -> None:
        """Refuse new calls, stop those in flight, and wait (bounded) for their replies."""
        self._draining = True
        if not self._scopes:
            return
        for scope in list(self._scopes):
            scope.cancel()
        with anyio.move_on_after(within):
            await self._idle.wait()
