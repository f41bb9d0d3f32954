"""Wiring the lane into a gateway (called by the composition root, gateway/app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.middleware import Middleware as StarletteMiddleware

from archon_gateway.gateway.call_pipeline import CallPipeline
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.lane.http_lane import HttpLane
from archon_gateway.gateway.lane.lane_calls import CallLane, ProfileAllows
from archon_gateway.gateway.lane.stdio_lane import StdioLane
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.session_registry import SessionRegistry
from archon_gateway.upstreams.pool import UpstreamPool

TRANSPORTS = ("stdio", "streamable-http")


@dataclass(frozen=True)
class Lane:
    """The lane's two ways in: off the stdio line, and an ASGI layer on the HTTP door."""

    calls: CallLane
    stdio: StdioLane
    http: StarletteMiddleware


def add_lane(
    server: GatewayServer,
    pipeline: CallPipeline,
    sessions: SessionRegistry,
    pool: UpstreamPool | None,
    shows: ProfileAllows,
    metrics: GatewayMetrics,
    *,
    mcp_path: str,
) -> Lane:
    """Serve calls of listed upstream tools and of plain native tools on the lane, through
    the same call pipeline as every other call."""

    counters = {name: metrics.lane_calls.labels(transport=name) for name in TRANSPORTS}

    def served(transport: str) -> None:
        counters[transport].inc()

    calls = CallLane(server, pipeline, pool, shows, served)

    @asynccontextmanager
    async def learning() -> AsyncIterator[None]:
        await calls.learn_native_tools()  # every family has registered its tools by now
        yield

    server.add_lifetime(learning)
    http = StarletteMiddleware(HttpLane, calls=calls, sessions=sessions, mcp_path=mcp_path)
    return Lane(calls, StdioLane(calls, sessions), http)
