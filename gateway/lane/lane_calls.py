"""Serving a `tools/call` on the lane: route it (a listed upstream tool, or a native tool
that needs no request context), run it through the gateway's call pipeline (the same
steps, in the same order, as every other call: gateway/call_pipeline.py), and answer with
the result's JSON, stamped for the caller's era. An upstream's result is relayed as the
JSON it sent; a native tool runs as FastMCP runs it (`call_tool` without its middleware pass).

What is skipped is the SDK's per-request dispatch (task groups and streams per request,
pydantic validation of the request and of results into models and back) and, for upstream
tools, FastMCP's component lookup through providers and transforms.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import FastMCPError
from fastmcp.tools import FunctionTool, ToolResult

from archon_gateway.catalog.view import META_TOOLS
from archon_gateway.core import sdk_compat
from archon_gateway.gateway.call_context import CallContext
from archon_gateway.gateway.call_pipeline import CallPipeline
from archon_gateway.gateway.lane.requests import LaneRequest
from archon_gateway.gateway.session_registry import ClientSession
from archon_gateway.upstreams.callers import Caller
from archon_gateway.upstreams.catalog import UpstreamTool
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.state import UpstreamState
from archon_gateway.upstreams.supervisor import Upstream

log = logging.getLogger(__name__)

SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"

# Whether a profile (None: the default one) shows a tool of that name.
ProfileAllows = Callable[[str | None, str], bool]


@dataclass(frozen=True)
class UpstreamRoute:
    upstream: Upstream
    tool: UpstreamTool


@dataclass(frozen=True)
class NativeRoute:
    name: str


Route = UpstreamRoute | NativeRoute


class RelayedResult:
    """An upstream's tools/call result as the pipeline sees it (only `is_error` is read)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.is_error = bool(raw.get("isError"))


class CallLane:
    def __init__(
        self,
        server: FastMCP[Any],
        pipeline: CallPipeline,
        pool: UpstreamPool | None,
        profile_allows: ProfileAllows,
        served: Callable[[str], None] = lambda transport: None,
    ) -> None:
        self._pipeline = pipeline
        self._native: set[str] = set()  # filled once the server starts (learn_native_tools)
        self._served = served
        self._server = server
        self._pool = pool
        self._profile_allows = profile_allows
        self._server_info: dict[str, Any] | None = None

    def route(self, name: str, profile: str | None = None) -> Route | None:
        """Where a call of `name` goes when the lane may serve it: shown by the caller's
        profile, and listed by an upstream that is not disabled, or a native tool that takes
        nothing from the request (no Context: it cannot report progress or ask anything).
        Unknown, not yet listed (lazily started) and meta tools take the normal path."""
        if name in META_TOOLS or not self._profile_allows(profile, name):
            return None
        listed = self._pool.listed_tool(name) if self._pool is not None else None
        if listed is not None:
            upstream, tool = listed
            disabled = upstream.state is UpstreamState.DISABLED
            return None if disabled else UpstreamRoute(upstream, tool)
        # FastMCP looks a native tool up under the default profile: both must show it.
        if name in self._native and self._profile_allows(None, name):
            return NativeRoute(name)
        return None

    async def learn_native_tools(self) -> None:
        """Which native tools the lane may run: plain function tools whose every parameter
        is an argument (none injected, such as a Context)."""
        self._native = {
            tool.name
            for tool in await self._server.local_provider.list_tools()
            if isinstance(tool, FunctionTool) and _takes_only_arguments(tool)
        }

    async def call(
        self,
        request: LaneRequest,
        route: Route,
        caller: Caller | None,
        progress: Callable[[float, float | None, str | None], Awaitable[None]] | None,
        *,
        transport: str,
        session: ClientSession | None = None,
        principal: str = "local",
        credential_kind: str | None = None,
        profile: str | None = None,
    ) -> dict[str, Any]:
        """The JSON-RPC `result` for the request: the upstream's result, or the one-line
        error result every other path gives (`isError`)."""
        self._served(transport)
        if session is not None:
            session.last_used = time.monotonic()  # what an idle-session reaper reads

        async def run_tool(call: CallContext) -> RelayedResult | ToolResult:
            if isinstance(route, NativeRoute):
                return await self._server.call_tool(
                    route.name, call.arguments, run_middleware=False
                )
            raw = await route.upstream.call(route.tool, call.arguments, progress, caller)
            return RelayedResult(raw)

        call = CallContext(
            request.name,
            request.arguments,
            run_tool,
            transport=transport,
            session_id=session.session_id if session is not None else None,
            principal=session.principal if session is not None else principal,
            credential_kind=session.credential_kind if session is not None else credential_kind,
            profile=profile,
            upstream=route.upstream.name if isinstance(route, UpstreamRoute) else None,
            caller=caller,
        )
        try:
            outcome = await self._pipeline.run(call)
        except FastMCPError as exc:
            result: dict[str, Any] = sdk_compat.tool_error_result(str(exc))
        except Exception:
            # As FastMCP's own path does: the client gets one line, the log the traceback.
            log.exception("lane call of %s failed", request.name)
            result = sdk_compat.tool_error_result(sdk_compat.tool_failure_text(request.name))
        else:
            result = _checked(outcome, route, modern=request.modern_version is not None)
        if request.modern_version is not None:
            result = self._stamped(result)
        return result

    def _stamped(self, result: dict[str, Any]) -> dict[str, Any]:
        if self._server_info is None:
            self._server_info = sdk_compat.server_info_stamp(self._server)
        meta = result.get("_meta")
        stamp = {SERVER_INFO_META: dict(self._server_info)}
        result["_meta"] = {**meta, **stamp} if isinstance(meta, dict) else stamp
        result.setdefault("resultType", "complete")
        return result


def _takes_only_arguments(tool: FunctionTool) -> bool:
    arguments = set((tool.parameters or {}).get("properties") or {})
    return set(inspect.signature(tool.fn).parameters) <= arguments


def _checked(outcome: Any, route: Route, *, modern: bool) -> dict[str, Any]:
    if isinstance(outcome, ToolResult):
        return sdk_compat.wire_tool_result(outcome, modern=modern)
    raw: dict[str, Any] = outcome.raw
    if not isinstance(raw.get("content"), list):
        assert isinstance(route, UpstreamRoute)
        return sdk_compat.tool_error_result(
            f"upstream '{route.upstream.name}' returned an invalid result for "
            f"{route.tool.exposed_name}: 'content' is not a list"
        )
    return raw
