"""The composition root: the one place that assembles a gateway from settings.

Everything below this module takes plain arguments, so tests can build a gateway with
exactly the parts they need. Later parts (upstreams, store, events, native tool families)
plug in here.
"""

from __future__ import annotations

from collections.abc import Callable

from fastmcp import FastMCP

from gateway import __version__
from gateway.admin import add_admin_tools
from gateway.components import ComponentRegistry, ComponentStatus
from gateway.http import add_http_routes
from gateway.metrics import GatewayMetrics
from gateway.middleware.errors import ErrorTranslationMiddleware
from gateway.middleware.metrics import MetricsMiddleware
from gateway.settings import Settings
from tools.patterns import add_pattern_tools

SERVER_NAME = "archon"
INSTRUCTIONS = (
    "Archon Gateway: one MCP server in front of many tools. Call gateway_info to see what "
    "this gateway serves and how healthy it is."
)


def build_gateway(settings: Settings) -> FastMCP:
    metrics = GatewayMetrics()
    components = ComponentRegistry()
    components.register("native_tools", lambda: ComponentStatus("ok"))
    for transport in ("stdio", "http"):
        components.register(transport, _transport_probe(transport, settings.transports))

    server = FastMCP(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        version=__version__,
        # Outermost first: errors are translated after metrics have seen the raw outcome.
        middleware=[ErrorTranslationMiddleware(), MetricsMiddleware(metrics)],
    )
    add_admin_tools(server, settings.transports, metrics, components)
    add_http_routes(server, metrics, components)
    add_pattern_tools(
        server,
        components,
        data_dir=settings.data_dir / "patterns",
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key,
        collection=settings.patterns_collection,
        batch_size=settings.patterns_batch_size,
        embed_timeout=settings.patterns_embed_timeout,
    )
    return server


def _transport_probe(name: str, served: list[str]) -> Callable[[], ComponentStatus]:
    status = (
        ComponentStatus("ok")
        if name in served
        else ComponentStatus("disabled", f"not served (use --transport {name} or both)")
    )
    return lambda: status
