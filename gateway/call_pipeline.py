"""The call pipeline: every policy a tool call passes through, declared once, in order.

`LAYERS` is the order, outermost first. Each layer is a plain async step over the gateway's
`CallContext` (gateway/call_context.py); `CallSteps` holds the gateway's instances by the
same names (absent ones are skipped: no store, no session log). Both paths run the same
`CallPipeline`: FastMCP reaches it through one adapter middleware (`PipelineMiddleware`),
and the lane (gateway/lane) calls `CallPipeline.run` directly.

Why this order:
- drain: outermost, it sees every call first and refuses new ones while stopping.
- errors: gateway and lookup errors become one line, after metrics saw the raw outcome.
- metrics, session_log, upstream_log: count what the caller saw (busy refusals and
  timeouts included).
- stdio_auth, admin: inside metrics, so refused calls count as `rejected`; admin tools
  over HTTP need an admin credential (gateway/admin_policy.py).
- breakers: outside the time limit, so timeouts count as failures.
- admission: inside metrics (busy refusals are counted) and outside the time limit.
- time_limit: innermost, it measures only the tool itself.

A new per-call feature is one more name in `LAYERS` and one more field in `CallSteps`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import mcp_types as mt
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.gateway.admin_policy import AdminCalls
from archon_gateway.gateway.call_context import CallContext, Next, Step
from archon_gateway.gateway.call_steps.admission import Admission
from archon_gateway.gateway.call_steps.breaker_guard import BreakerGuard
from archon_gateway.gateway.call_steps.call_metrics import CountCalls
from archon_gateway.gateway.call_steps.connection_log import ConnectionLog
from archon_gateway.gateway.call_steps.drain import InFlightCalls
from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
from archon_gateway.gateway.call_steps.session_log import SessionLog
from archon_gateway.gateway.call_steps.stdio_auth import StdioAuth
from archon_gateway.gateway.call_steps.timeout import TimeLimit
from archon_gateway.gateway.session_registry import SessionRegistry

LAYERS: tuple[str, ...] = (
    "drain",
    "errors",
    "metrics",
    "session_log",
    "upstream_log",
    "stdio_auth",
    "admin",
    "breakers",
    "admission",
    "time_limit",
)


@dataclass
class CallSteps:
    """The gateway's step for each layer (None: the layer is not in this gateway)."""

    drain: InFlightCalls | None = None
    errors: TranslateErrors | None = None
    metrics: CountCalls | None = None
    session_log: SessionLog | None = None
    upstream_log: ConnectionLog | None = None
    stdio_auth: StdioAuth | None = None
    admin: AdminCalls | None = None
    breakers: BreakerGuard | None = None
    admission: Admission | None = None
    time_limit: TimeLimit | None = None


assert tuple(f.name for f in fields(CallSteps)) == LAYERS, "CallSteps must follow LAYERS"


async def _run_tool(call: CallContext) -> Any:
    return await call.run_tool(call)


class CallPipeline:
    def __init__(self, steps: CallSteps | tuple[Step, ...]) -> None:
        if isinstance(steps, CallSteps):
            named = [(name, getattr(steps, name)) for name in LAYERS]
            present = [(name, step) for name, step in named if step is not None]
            self.layers = tuple(name for name, _ in present)
            ordered: tuple[Step, ...] = tuple(step for _, step in present)
        else:
            self.layers = tuple(type(step).__name__ for step in steps)
            ordered = steps
        self.steps = ordered
        # Chained once: each step's `call_next` is the next step, the last's runs the tool.
        chain: Next = _run_tool
        for step in reversed(ordered):
            chain = partial(step, call_next=chain)
        self._chain = chain

    async def run(self, call: CallContext) -> Any:
        return await self._chain(call)


# Where a call goes: the upstream serving a tool, or None for a native tool.
UpstreamOf = Callable[[str], "str | None"]


def _native(tool: str) -> None:
    return None


class PipelineMiddleware(Middleware):
    """FastMCP's way into the pipeline: each tools/call becomes a CallContext (the session
    from the registry, the principal from the session or the HTTP request) and runs through
    the pipeline, the tool itself being the rest of FastMCP's chain."""

    def __init__(
        self,
        pipeline: CallPipeline,
        *,
        sessions: SessionRegistry | None = None,
        upstream_of: UpstreamOf = _native,
    ) -> None:
        self.pipeline = pipeline
        self._sessions = sessions
        self._upstream_of = upstream_of

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        async def run_tool(_: CallContext) -> ToolResult:
            return await call_next(context)

        tool = context.message.name
        call = CallContext(
            tool, context.message.arguments or {}, run_tool, upstream=self._upstream_of(tool)
        )
        fastmcp = context.fastmcp_context
        if fastmcp is not None:
            call.transport = fastmcp.transport
            call.tool_names = partial(_tool_names, fastmcp.fastmcp.list_tools)
            self._identify(call, fastmcp.session if fastmcp.request_context else None)
        result: ToolResult = await self.pipeline.run(call)
        return result

    def _identify(self, call: CallContext, sdk_session: object) -> None:
        session = self._sessions.of(sdk_session) if self._sessions and sdk_session else None
        if session is not None:
            session.last_used = time.monotonic()  # what an idle-session reaper reads
            call.session_id = session.session_id
            call.principal, call.credential_kind = session.principal, session.credential_kind
        elif call.transport == "streamable-http":
            state = get_http_request().state
            call.principal = str(getattr(state, "principal", "anonymous"))
            call.credential_kind = getattr(state, "credential_kind", None)


async def _tool_names(list_tools: Callable[[], Awaitable[Sequence[Any]]]) -> list[str]:
    return [tool.name for tool in await list_tools()]


def as_middleware(*steps: Step) -> PipelineMiddleware:
    """A FastMCP middleware running `steps` (for servers built without the gateway)."""
    return PipelineMiddleware(CallPipeline(steps))
