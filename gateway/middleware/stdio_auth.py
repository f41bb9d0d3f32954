"""The optional token check for stdio: decided once at start (`auth.decisions.stdio_decision`),
enforced on every request here."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp import MCPError

from archon_gateway.gateway.auth.audit import AuditEvent, AuditSink
from archon_gateway.gateway.auth.decisions import Decision
from archon_gateway.gateway.core.errors import AuthRejected

STDIO_REFUSED = (
    "this gateway requires a token on stdio: pass the service token as "
    "ARCHON_AUTH_STDIO_TOKEN in the server's env (client config)"
)


class StdioAuthMiddleware(Middleware):
    """Refuses every stdio request but `initialize` (so the client can show the error) when
    the stdio decision was a reject. Sits inside the metrics middleware, so refused tool
    calls count as `rejected`."""

    def __init__(self, decision: Decision, audit: AuditSink) -> None:
        self.decision = decision
        self.audit = audit

    async def on_request(
        self,
        context: MiddlewareContext[mt.Request[Any, Any]],
        call_next: CallNext[mt.Request[Any, Any], Any],
    ) -> Any:
        fastmcp_context = context.fastmcp_context
        transport = fastmcp_context.transport if fastmcp_context else None
        if self.decision.accepted or transport != "stdio" or context.method == "initialize":
            return await call_next(context)
        reason, method = self.decision.reason, context.method or ""
        self.audit.record(AuditEvent("reject", "stdio", reason, path=method))
        if context.method == "tools/call":
            raise AuthRejected(STDIO_REFUSED)
        raise MCPError(-32001, STDIO_REFUSED)
