"""The optional token check for stdio: decided once at start (`auth.decisions.stdio_decision`),
enforced on every request: tool calls as a step of the call pipeline (inside metrics, so
refused calls count as `rejected`), every other request but `initialize` (so the client can
show the error) by the request gate."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp import MCPError

from archon_gateway.core.audit import AuditEvent, AuditSink
from archon_gateway.core.errors import AuthRejected
from archon_gateway.gateway.auth.decisions import Decision
from archon_gateway.gateway.call_context import CallContext, Next

STDIO_REFUSED = (
    "this gateway requires a token on stdio: pass the service token as "
    "ARCHON_AUTH_STDIO_TOKEN in the server's env (client config)"
)


class StdioAuth:
    def __init__(self, decision: Decision, audit: AuditSink) -> None:
        self.decision = decision
        self.audit = audit

    def refused(self, transport: str | None, method: str) -> bool:
        """Whether a request is refused (and, if so, audited as such)."""
        if self.decision.accepted or transport != "stdio" or method == "initialize":
            return False
        self.audit.record(AuditEvent("reject", "stdio", self.decision.reason, path=method))
        return True

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        if self.refused(call.transport, "tools/call"):
            raise AuthRejected(STDIO_REFUSED)
        return await call_next(call)


class StdioRequestGate(Middleware):
    """Every request but tool calls (the pipeline's) and `initialize`, refused on stdio
    when the stdio decision was a reject."""

    def __init__(self, auth: StdioAuth) -> None:
        self.auth = auth

    async def on_request(
        self,
        context: MiddlewareContext[mt.Request[Any, Any]],
        call_next: CallNext[mt.Request[Any, Any], Any],
    ) -> Any:
        method = context.method or ""
        if method == "tools/call":
            return await call_next(context)
        fastmcp_context = context.fastmcp_context
        transport = fastmcp_context.transport if fastmcp_context else None
        if self.auth.refused(transport, method):
            raise MCPError(-32001, STDIO_REFUSED)
        return await call_next(context)
