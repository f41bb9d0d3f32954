"""Native tools raise GatewayError subclasses; FastMCP would wrap those as "Error calling
tool 'x': ..." and log a traceback before any middleware sees them. This turns them into
the one-line ToolError the caller should read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastmcp.exceptions import ToolError

from gateway.errors import GatewayError


@contextmanager
def tool_errors() -> Iterator[None]:
    try:
        yield
    except GatewayError as exc:
        raise ToolError(str(exc)) from None
