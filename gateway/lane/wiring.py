"""Wiring the lane into a gateway (called by the composition root, gateway/app.py)."""

from __future__ import annotations

from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.lane.proxied_calls import ProfileAllows, ProxiedCallLane
from archon_gateway.gateway.lane.stdio_lane import SessionCapture, StdioLane
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.upstreams.pool import UpstreamPool


def add_lane(
    server: GatewayServer, pool: UpstreamPool, shows: ProfileAllows, metrics: GatewayMetrics
) -> ProxiedCallLane:
    """Serve listed upstream tools' calls on the lane (stdio: taken off the line)."""

    def served(transport: str) -> None:
        metrics.lane_calls.labels(transport=transport).inc()

    calls = ProxiedCallLane(server, pool, shows, served)
    stdio = StdioLane(calls)
    server.add_middleware(SessionCapture(stdio))
    server.stdio_tap = stdio
    return calls
