"""Talking to a running gateway from the command line (its MCP endpoint over HTTP)."""

from __future__ import annotations

from typing import Any

from archon_gateway.core.errors import Refused, UpstreamUnavailable
from archon_gateway.gateway.live_config.admin import RELOAD_TOOL
from archon_gateway.gateway.upstream_admin import RESTART_TOOL

INFO_TOOL = "gateway_info"


async def call_gateway_tool(
    url: str, tool: str, arguments: dict[str, Any], *, service_token: str | None
) -> dict[str, Any]:
    """Call one of the gateway's own tools at `url`; its structured answer."""
    # Imported here: the CLI stays fast for commands that never talk to a gateway.
    import httpx
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    headers = {"X-Service-Auth": service_token} if service_token else {}
    transport = StreamableHttpTransport(url, headers=headers)
    try:
        async with Client(transport) as client:
            result = await client.call_tool(tool, arguments, raise_on_error=False)
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        raise UpstreamUnavailable(f"cannot reach the gateway at {url}: {exc}") from exc
    if result.is_error:
        said = " ".join(getattr(part, "text", "") for part in result.content)
        raise Refused(said or f"{tool} failed")
    return dict(result.structured_content or {})


async def restart_upstream(url: str, name: str, *, service_token: str | None) -> dict[str, Any]:
    """Call `gateway_restart_upstream` on the gateway at `url`; the upstream's state after."""
    return await call_gateway_tool(url, RESTART_TOOL, {"name": name}, service_token=service_token)


async def reload_config(url: str, *, service_token: str | None) -> dict[str, Any]:
    """Call `gateway_reload` on the gateway at `url`; its report."""
    return await call_gateway_tool(url, RELOAD_TOOL, {}, service_token=service_token)


async def upstream_states(url: str, *, service_token: str | None) -> dict[str, Any]:
    """Each upstream's state and tool count as the running gateway sees them."""
    info = await call_gateway_tool(url, INFO_TOOL, {}, service_token=service_token)
    upstreams = info.get("upstreams")
    return dict(upstreams) if isinstance(upstreams, dict) else {}
