"""The plain HTTP side of the front door: /health, /metrics, and helpful 404/405 answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastmcp import FastMCP
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from archon_gateway.core import sdk_compat
from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.health import ComponentRegistry
from archon_gateway.core.version import __version__
from archon_gateway.gateway.body_guard import JsonBodyGuard
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.host_guard import HOST_VERIFIED, HostGuard, HostRules, host_policy
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.request_cap import McpRequestCap
from archon_gateway.gateway.session_bounds import bound_sessions


def add_http_routes(
    server: FastMCP,
    metrics: GatewayMetrics,
    components: ComponentRegistry,
    *,
    breakers: BreakerRegistry | None = None,
    protect_details: bool = False,
    details: Mapping[str, Callable[[], Any]] | None = None,
    profiles: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> None:
    """/health is liveness (200 while the process serves); /health/ready (or /health?ready=1)
    is readiness: 503 when a critical component is down. Component and breaker details are
    left out for unauthenticated callers when `protect_details` is on; so are the `details`
    sections (per-upstream supervision state) and `profiles` (each catalog profile's mode and
    tool counts)."""

    async def report(request: Request, ready_check: bool) -> Response:
        snapshot = components.snapshot()
        status = components.overall(snapshot)
        body: dict[str, Any] = {"status": status}
        if ready_check:
            body["ready"] = status != "down"
        code = 503 if ready_check and not body["ready"] else 200
        if getattr(request.state, HOST_VERIFIED, True) is False:
            return JSONResponse(body, status_code=code)  # a probe by IP, say: status only
        body.update(version=__version__, uptime_s=round(metrics.uptime(), 3))
        if not protect_details or getattr(request.state, "authenticated", False):
            body["components"] = {name: item.as_dict() for name, item in snapshot.items()}
            if breakers is not None:
                body["breakers"] = {n: b.as_dict() for n, b in breakers.snapshot().items()}
            for section, read in (details or {}).items():
                body[section] = read()
            if profiles is not None:
                body["profiles"] = await profiles()
        return JSONResponse(body, status_code=code)

    @server.custom_route("/health", methods=["GET"], include_in_schema=False)
    async def health(request: Request) -> Response:
        ready = request.query_params.get("ready", "").lower() in ("1", "true", "yes")
        return await report(request, ready)

    @server.custom_route("/health/ready", methods=["GET"], include_in_schema=False)
    async def readiness(request: Request) -> Response:
        return await report(request, True)

    @server.custom_route("/metrics", methods=["GET"], include_in_schema=False)
    async def metrics_text(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@dataclass(frozen=True)
class RequestBounds:
    """MCP requests in flight, and handshake-era sessions: idle time and count (see
    gateway.request_cap, gateway.session_bounds)."""

    max_requests: int = 512
    session_idle_s: float = 1800.0
    max_sessions: int = 1000


def build_http_app(
    server: FastMCP,
    mcp_path: str,
    max_body_bytes: int = 32 * 1024 * 1024,
    *,
    stateless: bool = False,
    bound: tuple[str, int] | None = None,
    bounds: RequestBounds | None = None,
) -> Starlette:
    """Streamable HTTP MCP at `mcp_path` plus the server's custom routes; JSON-RPC bodies
    over `max_body_bytes` (or nested too deeply) are refused before the SDK reads them.
    `stateless`: no handshake-era sessions are kept between requests (for replicas behind a
    load balancer; 2026-07-28 requests never need one). `bound`: the listener's address
    (host, real port); with it, every route checks Host and Origin first
    (gateway.host_guard; the front door's `host_rules` add to the loopback defaults).
    `bounds`: the MCP request cap and the handshake-era session limits."""
    # Host/Origin first, then the request cap; then a GatewayServer's auth layer (before
    # any route runs) and the lane (inside the body guard: it reads the parsed body).
    front = server.front if isinstance(server, GatewayServer) else None
    guard = []
    if bound is not None:
        rules = front.host_rules if front else HostRules()
        guard.append(Middleware(HostGuard, policy=host_policy(rules, *bound)))
    bounds = bounds or RequestBounds()
    middleware = [
        *guard,
        # Outermost after Host: a full gateway still answers /health (never counted).
        Middleware(McpRequestCap, max_requests=bounds.max_requests, paths=(mcp_path,)),
        *(front.http_outer if front else ()),
        Middleware(JsonBodyGuard, max_bytes=max_body_bytes, paths=(mcp_path,)),
        *(front.http_inner if front else ()),
    ]
    # host_origin_protection off: FastMCP's own guard (FASTMCP_HTTP_HOST_ORIGIN_PROTECTION)
    # would refuse what allowed_hosts allows and probes by IP; ours covers every route.
    app = server.http_app(
        path=mcp_path,
        transport="http",
        middleware=middleware,
        stateless_http=stateless,
        host_origin_protection=False,
    )
    if not stateless:
        bound_sessions(
            app,
            idle_s=bounds.session_idle_s,
            max_sessions=bounds.max_sessions,
            paths=(mcp_path,),
            after=JsonBodyGuard,  # it reads the parsed body to tell an initialize
        )
    # One limit (max_message_bytes) on every path: the SDK's own, lower one is raised to it.
    sdk_compat.lift_http_body_limit(app, max_body_bytes)
    if front is not None:
        front.open_http_sessions = sdk_compat.http_session_counter(app)
    endpoints = {
        "mcp": mcp_path,
        "mcp_profile": f"{mcp_path.rstrip('/')}/{{profile}}",
        "health": "/health",
        "ready": "/health/ready",
        "metrics": "/metrics",
    }

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        body: dict[str, Any] = {"error": exc.detail, "path": request.url.path}
        if exc.status_code == 404:
            body["endpoints"] = endpoints
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(404, http_error)
    app.add_exception_handler(405, http_error)
    return app
