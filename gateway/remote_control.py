"""Talking to a running gateway from the command line (its MCP endpoint over HTTP)."""

from __future__ import annotations

from typing import Any

from archon_gateway.core.errors import AuthRejected, Refused, UpstreamUnavailable
from archon_gateway.core.tool_family import ADMIN_TOOL_REFUSED
from archon_gateway.gateway.live_config.admin import RELOAD_TOOL
from archon_gateway.gateway.upstream_admin import RESTART_TOOL

INFO_TOOL = "gateway_info"


async def call_gateway_tool(
    url: str, tool: str, arguments: dict[str, Any], *, service_token: str | None
) -> dict[str, Any]:
    """Call one of the gateway's own tools at `url`; its structured answer. `service_token`
    is sent as X-Service-Auth (the service token or the local admin token). A gateway
    that refuses the credential (401/403, or an admin tool refused) raises AuthRejected."""
    # Imported here: the CLI stays fast for commands that never talk to a gateway.
    import httpx
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport
    from mcp import MCPError

    headers = {"X-Service-Auth": service_token} if service_token else {}
    transport = StreamableHttpTransport(url, headers=headers)
    try:
        async with Client(transport) as client:
            result = await client.call_tool(tool, arguments, raise_on_error=False)
    except (httpx.HTTPError, OSError, RuntimeError, MCPError) as exc:
        status = await _refusal_status(url, headers)
        if status is not None:
            raise AuthRejected(f"the gateway at {url} refused the credentials ({status})") from exc
        raise UpstreamUnavailable(f"cannot reach the gateway at {url}: {exc}") from exc
    if result.is_error:
        said = " ".join(getattr(part, "text", "") for part in result.content)
        if f"{ADMIN_TOOL_REFUSED}:" in said:
            raise AuthRejected(said)
        raise Refused(said or f"{tool} failed")
    return dict(result.structured_content or {})


async def _refusal_status(url: str, headers: dict[str, str]) -> int | None:
    """After a failed connect: whether the gateway refuses these credentials (its 401 or
    403 to an initialize), asked once more with a plain request; None for anything else."""
    import httpx

    probe = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as web:
            answer = await web.post(url, json=probe, headers={**accept, **headers})
    except httpx.HTTPError:
        return None
    return answer.status_code if answer.status_code in (401, 403) else None


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
