"""The plain HTTP side of the front door: /health, /metrics, and helpful 404/405 answers."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import __version__
from gateway.components import ComponentRegistry
from gateway.metrics import GatewayMetrics


def add_http_routes(
    server: FastMCP, metrics: GatewayMetrics, components: ComponentRegistry
) -> None:
    @server.custom_route("/health", methods=["GET"], include_in_schema=False)
    async def health(request: Request) -> Response:
        snapshot = components.snapshot()
        return JSONResponse(
            {
                "status": components.overall(snapshot),
                "version": __version__,
                "uptime_s": round(metrics.uptime(), 3),
                "components": {name: item.as_dict() for name, item in snapshot.items()},
            }
        )

    @server.custom_route("/metrics", methods=["GET"], include_in_schema=False)
    async def metrics_text(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


def build_http_app(server: FastMCP, mcp_path: str) -> Starlette:
    """Streamable HTTP MCP at `mcp_path` plus the server's custom routes."""
    app = server.http_app(path=mcp_path, transport="http")
    endpoints = {"mcp": mcp_path, "health": "/health", "metrics": "/metrics"}

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        body: dict[str, Any] = {"error": exc.detail, "path": request.url.path}
        if exc.status_code == 404:
            body["endpoints"] = endpoints
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(404, http_error)
    app.add_exception_handler(405, http_error)
    return app
