"""Calling a tool for an event the way a client's tools/call goes: FastMCP's public
`call_tool` runs the server's whole middleware chain (errors, metrics, breakers, time
limits), so events share the limits and counts of MCP calls."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import NotFoundError, ToolError
from fastmcp.exceptions import ValidationError as ArgumentsInvalid
from pydantic import ValidationError

from archon_gateway.gateway.core.errors import GatewayError, InvalidArgument, NotFound, ToolFailed
from archon_gateway.gateway.core.sdk_compat import tool_error_cause
from archon_gateway.gateway.events.envelope import describe


class MiddlewareToolCaller:
    def __init__(self, server: FastMCP[Any]) -> None:
        self._server = server

    async def __call__(self, tool: str, arguments: dict[str, Any]) -> Any:
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
