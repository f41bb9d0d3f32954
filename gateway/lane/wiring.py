"""Wiring the lane into a gateway (called by the composition root, gateway/app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from starlette.middleware import Middleware as StarletteMiddleware

from archon_gateway.gateway.core import sdk_compat
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.lane.http_lane import HttpLane, HttpSessions
from archon_gateway.gateway.lane.stdio_lane import StdioLane
from archon_gateway.gateway.lane.tool_calls import CallLane, ProfileAllows
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.upstreams.pool import UpstreamPool


def add_lane(
    server: GatewayServer,
    pool: UpstreamPool | None,
    shows: ProfileAllows,
    metrics: GatewayMetrics,
    *,
    mcp_path: str,
) -> CallLane:
    """Serve calls of listed upstream tools and of plain native tools on the lane: taken
    off the stdio line, and by an ASGI layer on the HTTP front door."""

    counters = {name: metrics.lane_calls.labels(transport=name) for name in TRANSPORTS}

    def served(transport: str) -> None:
        counters[transport].inc()

    calls = CallLane(server, pool, shows, served)

    @asynccontextmanager
    async def learning() -> AsyncIterator[None]:
        await calls.learn_native_tools()  # every family has registered its tools by now
        yield

    server.add_lifetime(learning)
    stdio, sessions = StdioLane(calls), HttpSessions()
    server.add_middleware(SessionCapture(stdio, sessions))
    server.stdio_tap = stdio
    server.http_inner_middleware.append(
        StarletteMiddleware(HttpLane, calls=calls, sessions=sessions, mcp_path=mcp_path)
    )
    return calls


TRANSPORTS = ("stdio", "streamable-http")


class SessionCapture(Middleware):
    """Hands each handshake-era session to the lane when it initializes: the stdio client's,
    and HTTP sessions by their id."""

    def __init__(self, stdio: StdioLane, sessions: HttpSessions) -> None:
        self._stdio = stdio
        self._sessions = sessions

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        ctx = context.fastmcp_context
        connection = sdk_compat.session_connection(ctx.session) if ctx is not None else None
        if ctx is None or connection is None:
            return result
        session_id = None
        with suppress(RuntimeError):
            session_id = ctx.session_id
        if ctx.transport == "stdio":
            self._stdio.attach(connection, session_id)
        elif ctx.transport == "streamable-http" and session_id is not None:
            self._sessions.add(session_id, connection)
        return result
