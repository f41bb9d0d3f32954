"""Talking to a running gateway from the command line (its MCP endpoint over HTTP)."""

from __future__ import annotations

from typing import Any

from archon_gateway.gateway.core.errors import Refused, UpstreamUnavailable
from archon_gateway.gateway.upstream_admin import RESTART_TOOL


async def restart_upstream(url: str, name: str, *, service_token: str | None) -> dict[str, Any]:
    """Call `gateway_restart_upstream` on the gateway at `url`; the upstream's state after."""
    # Imported here: the CLI stays fast for commands that never talk to a gateway.
    import httpx
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    headers = {"X-Service-Auth": service_token} if service_token else {}
    transport = StreamableHttpTransport(url, headers=headers)
    try:
        async with Client(transport) as client:
            result = await client.call_tool(RESTART_TOOL, {"name": name}, raise_on_error=False)
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        raise UpstreamUnavailable(f"cannot reach the gateway at {url}: {exc}") from exc
    if result.is_error:
        said = " ".join(getattr(part, "text", "") for part in result.content)
        raise Refused(said or f"{RESTART_TOOL} failed")
    return dict(result.structured_content or {})
