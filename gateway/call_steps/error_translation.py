"""Outermost step: turns gateway and lookup errors into one clear line for the caller."""

from __future__ import annotations

import difflib
from typing import Any

from fastmcp.exceptions import NotFoundError, ToolError

from archon_gateway.core.errors import GatewayError
from archon_gateway.gateway.call_context import CallContext, Next


class TranslateErrors:
    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        try:
            return await call_next(call)
        except NotFoundError as exc:
            raise ToolError(await _unknown_tool_message(call)) from exc
        except GatewayError as exc:
            raise ToolError(str(exc)) from exc


async def _unknown_tool_message(call: CallContext) -> str:
    name = call.tool
    message = f"Unknown tool {name!r}."
    if call.tool_names is None:
        return message
    names = sorted(await call.tool_names())
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return f"{message} Did you mean {', '.join(repr(c) for c in close)}?"
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    noun = "tool" if len(names) == 1 else "tools"
    return f"{message} This gateway has {len(names)} {noun}: {shown} (see tools/list)."
