"""The `gateway_reload` admin tool: reload the configuration now and say what happened."""

from __future__ import annotations

from fastmcp import FastMCP
from mcp_types import ToolAnnotations

from archon_gateway.core.errors import tool_errors
from archon_gateway.core.tool_family import ADMIN_TAG
from archon_gateway.gateway.live_config.reloader import ConfigReloader, ReloadReport
from archon_gateway.gateway.upstream_admin import request_principal, request_transport

RELOAD_TOOL = "gateway_reload"


def add_reload_tool(server: FastMCP, reloader: ConfigReloader) -> None:
    @server.tool(
        name=RELOAD_TOOL,
        tags={ADMIN_TAG},
        annotations=ToolAnnotations(
            title="Reload the configuration",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def gateway_reload() -> ReloadReport:
        """Re-read the upstream manifests and the config file and apply what changed
        (upstreams added, removed, restarted or updated; profiles; timeouts) without a
        restart. When anything is invalid nothing changes and each problem is listed;
        settings that need a restart are named."""
        with tool_errors():
            return await reloader.reload(
                "tool",
                principal=request_principal(),
                transport=request_transport(),
                tool=RELOAD_TOOL,
            )
