"""Outermost middleware: turns gateway and lookup errors into one clear line for the caller."""

from __future__ import annotations

import difflib

import mcp_types as mt
from fastmcp.exceptions import NotFoundError, ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.gateway.core.errors import GatewayError


class ErrorTranslationMiddleware(Middleware):
    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            return await call_next(context)
        except NotFoundError as exc:
            raise ToolError(await _unknown_tool_message(context)) from exc
        except GatewayError as exc:
            raise ToolError(str(exc)) from exc


async def _unknown_tool_message(context: MiddlewareContext[mt.CallToolRequestParams]) -> str:
    name = context.message.name
    message = f"Unknown tool {name!r}."
    server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
    if server is None:
        return message
    names = sorted(tool.name for tool in await server.list_tools())
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return f"{message} Did you mean {', '.join(repr(c) for c in close)}?"
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    noun = "tool" if len(names) == 1 else "tools"
    return f"{message} This gateway has {len(names)} {noun}: {shown} (see tools/list)."
