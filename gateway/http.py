"""The plain HTTP side of the front door: /health, /metrics, and helpful 404/405 answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
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
from archon_gateway.gateway.mcp_server import GatewayServer


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
        body.update(version=__version__, uptime_s=round(metrics.uptime(), 3))
        if not protect_details or getattr(request.state, "authenticated", False):
            body["components"] = {name: item.as_dict() for name, item in snapshot.items()}
            if breakers is not None:
                body["breakers"] = {n: b.as_dict() for n, b in breakers.snapshot().items()}
            for section, read in (details or {}).items():
                body[section] = read()
            if profiles is not None:
                body["profiles"] = await profiles()
        code = 503 if ready_check and not body["ready"] else 200
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


def build_http_app(
    server: FastMCP,
    mcp_path: str,
    max_body_bytes: int = 32 * 1024 * 1024,
    *,
    stateless: bool = False,
) -> Starlette:
    """Streamable HTTP MCP at `mcp_path` plus the server's custom routes; JSON-RPC bodies
    over `max_body_bytes` (or nested too deeply) are refused before the SDK reads them.
    `stateless`: no handshake-era sessions are kept between requests (for replicas behind a
    load balancer; 2026-07-28 requests never need one)."""
    # A GatewayServer brings its auth layer (outermost: before any route runs) and the lane
    # (inside the body guard: it reads the parsed body).
    front = server.front if isinstance(server, GatewayServer) else None
    middleware = [
        *(front.http_outer if front else ()),
        Middleware(JsonBodyGuard, max_bytes=max_body_bytes, paths=(mcp_path,)),
        *(front.http_inner if front else ()),
    ]
    app = server.http_app(
        path=mcp_path, transport="http", middleware=middleware, stateless_http=stateless
    )
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
