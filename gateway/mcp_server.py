"""The gateway's FastMCP server: FastMCP plus resources that live as long as it serves.

Why a subclass: FastMCP closes its lifespan stack (the server's and every provider's
lifespan) inside a shielded cancel scope, so a lifespan that holds an anyio task group (an
upstream pool, a Kafka consumer) fails at shutdown with "Attempted to exit a cancel scope
that isn't the current task's current cancel scope". Our resources are entered around
FastMCP's lifespan instead, in one AsyncExitStack, and closed in the order they opened.
Every way of running the server (our serve loop, the HTTP app's lifespan, fastmcp's
in-memory Client) enters the lifespan through `around_lifespan` (see the SDK seam,
core.sdk_compat), so they all get the resources.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.middleware import Middleware as StarletteMiddleware

from archon_gateway.core.sdk_compat import LifespanHookServer
from archon_gateway.gateway.call_steps.drain import InFlightCalls
from archon_gateway.gateway.host_guard import HostRules
from archon_gateway.gateway.stdio import LineTap

ResourceFactory = Callable[[], AbstractAsyncContextManager[Any]]


def _no_sessions() -> int:
    return 0


@dataclass
class FrontDoor:
    """What the transports take from the composition root (gateway/app.py), built there
    in one place: the HTTP door's ASGI layers (outermost first: service auth, the profile
    path; and inside the body guard, the lane), the stdio lane, and the call pipeline's
    drain step (the serve loop drains it at shutdown)."""

    http_outer: tuple[StarletteMiddleware, ...] = ()
    http_inner: tuple[StarletteMiddleware, ...] = ()
    stdio_tap: LineTap | None = None
    drain: InFlightCalls | None = None
    # Open streamable-HTTP sessions (set by the HTTP app once built; /metrics reads it).
    open_http_sessions: Callable[[], int] = field(default=_no_sessions)
    # Allowed Host/Origin values for the HTTP listener (gateway.host_guard).
    host_rules: HostRules = field(default_factory=HostRules)


class GatewayServer(LifespanHookServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resource_factories: list[ResourceFactory] = []
        self._resource_users = 0
        self.front = FrontDoor()

    def add_lifetime(self, factory: ResourceFactory) -> None:
        """Enter `factory()` when the server starts and exit it when the server stops."""
        self._resource_factories.append(factory)

    @asynccontextmanager
    async def around_lifespan(
        self, fastmcp_lifespan: Callable[[], AbstractAsyncContextManager[None]]
    ) -> AsyncGenerator[None, None]:
        # Nested entries (our serve loop, then the HTTP app) share one set of resources,
        # held by the outermost entry, which is also the last to leave.
        first = self._resource_users == 0
        self._resource_users += 1
        try:
            if first:
                async with AsyncExitStack() as stack:
                    for factory in self._resource_factories:
                        await stack.enter_async_context(factory())
                    async with fastmcp_lifespan():
                        yield
            else:
                async with fastmcp_lifespan():
                    yield
        finally:
            self._resource_users -= 1
