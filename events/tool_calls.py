"""Calling a tool for an event the way a client's tools/call goes: FastMCP's public
`call_tool` runs the server's whole middleware chain (errors, metrics, breakers, time
limits), so events share the limits and counts of MCP calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from fastmcp import FastMCP
from fastmcp.exceptions import NotFoundError, ToolError
from fastmcp.exceptions import ValidationError as ArgumentsInvalid
from pydantic import ValidationError

from archon_gateway.core.errors import GatewayError, InvalidArgument, NotFound, ToolFailed
from archon_gateway.core.sdk_compat import tool_error_cause
from archon_gateway.events.envelope import describe


class MiddlewareToolCaller:
    """`admission`: the tools' admission limits (`tool_concurrency`). Events wait for a
    slot of their own, at most half a tool's limit (at least one), rather than being
    refused as busy: a backlog of events must not take every slot from MCP clients."""

    def __init__(self, server: FastMCP[Any], admission: Mapping[str, int] | None = None) -> None:
        self._server = server
        self._slots = {
            tool: anyio.CapacityLimiter(max(1, limit // 2))
            for tool, limit in (admission or {}).items()
        }

    async def __call__(self, tool: str, arguments: dict[str, Any]) -> Any:
        slots = self._slots.get(tool)
        if slots is None:
            return await self._call(tool, arguments)
        async with slots:
            return await self._call(tool, arguments)

    async def _call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """The tool's structured result (its text when it has none); a failure is raised
        as the GatewayError the tool raised, or translated to one."""
        try:
            result = await self._server.call_tool(tool, arguments)
        except ToolError as exc:
            cause = tool_error_cause(exc)
            if isinstance(cause, GatewayError):
                raise cause from exc
            if isinstance(cause, NotFoundError):
                raise NotFound(str(exc)) from exc
            raise ToolFailed(f"{tool} failed: {exc}") from exc
        except ArgumentsInvalid as exc:
            raise InvalidArgument(f"{tool}: invalid arguments: {_reason(exc)}") from exc
        except ValidationError as exc:
            raise InvalidArgument(f"{tool}: invalid arguments: {describe(exc)}") from exc
        except NotFoundError as exc:
            raise NotFound(f"no tool named '{tool}'") from exc
        if result.structured_content is not None:
            content = result.structured_content
            # FastMCP wraps non-object results as {"result": ...}.
            return content
        texts = [getattr(block, "text", "") for block in result.content]
        if getattr(result, "is_error", False):
            raise ToolFailed(f"{tool} failed: {' '.join(texts)}")
        return {"text": "\n".join(texts)}


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
