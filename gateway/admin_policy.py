"""Who may use the admin tools: one rule for every one of them, read or write.

An admin tool is a native tool declared with the `admin` tag (`core.tool_family.ADMIN_TAG`):
the reload, the upstream restart, the audit trail and session views. Over stdio (and
in-process: events, tests) the caller is the user who launched the gateway, so admin
tools work. Over HTTP they need an admin credential, which the HTTP guard records on the
request (`ADMIN_STATE`): the service token, the local admin token, or a JWT with the admin
scope.

A caller without one does not see admin tools (in tools/list, nor in catalog search: a
transform, so every listing is filtered), and calling one (directly, on the lane, or via
archon_call_tool, which all run the call pipeline) is refused in one line naming what it
needs and where the local token is. Publishing a gateway-admin event (breaker reset/open,
upstream restart) is an admin action too: `events_publish` asks `AdminRule.require`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.transforms import Transform
from fastmcp.tools import Tool

from archon_gateway.core.audit import AuditEvent, AuditSink
from archon_gateway.core.errors import AuthRejected
from archon_gateway.core.tool_family import ADMIN_TAG, ADMIN_TOOL_REFUSED
from archon_gateway.gateway.auth.http_guard import ADMIN_STATE
from archon_gateway.gateway.call_context import CallContext, Next


def caller_may_administer() -> bool:
    """True unless this is an HTTP request without an admin credential."""
    try:
        request = get_http_request()
    except RuntimeError:
        return True  # stdio or in-process: the local user (stdio's own token check aside)
    return request.scope.get("state", {}).get(ADMIN_STATE) is True


def _http_caller() -> tuple[str, str]:
    """The refused HTTP caller's principal and address, for the audit trail."""
    try:
        request = get_http_request()
    except RuntimeError:
        return "local", ""
    state = request.scope.get("state", {})
    client = f"{request.client.host}:{request.client.port}" if request.client else ""
    return str(state.get("principal", "anonymous")), client


class AdminRule:
    """The rule with its one-line refusal, which names what the caller needs and where the
    local admin token is."""

    def __init__(
        self, *, token_file: Path, admin_scope: str | None, audit: AuditSink | None = None
    ) -> None:
        self.token_file = token_file
        self.admin_scope = admin_scope
        self.audit = audit

    def require(self, what: str, *, tool: str = "") -> None:
        """Raise AuthRejected (and audit the refusal) unless the caller may administer;
        `what` says what was asked ("gateway_reload is an admin tool")."""
        if caller_may_administer():
            return
        if self.audit is not None:
            principal, client = _http_caller()
            self.audit.record(
                AuditEvent("reject", "http", "admin_required", principal, client=client, tool=tool)
            )
        raise AuthRejected(self.refusal(what))

    def refusal(self, what: str) -> str:
        jwt = f", a JWT with the '{self.admin_scope}' scope" if self.admin_scope else ""
        return (
            f"{what}: over HTTP it needs the service token (SERVICE_AUTH_TOKEN){jwt} or the "
            f"gateway's admin token, which is in {self.token_file} (send either as "
            "X-Service-Auth)"
        )


class AdminTools:
    """The names of the server's admin tools: its own tools tagged `admin`, learnt at the
    first call that needs them (every native tool is added before the server serves)."""

    def __init__(self, server: FastMCP) -> None:
        self._server = server
        self._names: frozenset[str] | None = None

    async def names(self) -> frozenset[str]:
        if self._names is None:
            tools = await self._server.local_provider.list_tools()
            self._names = frozenset(tool.name for tool in tools if ADMIN_TAG in tool.tags)
        return self._names


class HideAdminTools(Transform):
    """Admin tools do not exist in the listings of a caller who may not use them."""

    def __init__(self, admin: AdminTools) -> None:
        self._admin = admin

    async def list_tools(self, tools: Sequence[Tool]) -> Sequence[Tool]:
        if caller_may_administer():
            return tools
        names = await self._admin.names()
        return [tool for tool in tools if tool.name not in names]


class AdminCalls:
    """The one enforcement point for calls: a step of the call pipeline (gateway/
    call_pipeline.py), inside the metrics step, so a refusal counts as `rejected`."""

    def __init__(self, admin: AdminTools, rule: AdminRule) -> None:
        self._admin = admin
        self._rule = rule

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        if call.tool in await self._admin.names():
            self._rule.require(f"{call.tool} {ADMIN_TOOL_REFUSED}", tool=call.tool)
        return await call_next(call)
