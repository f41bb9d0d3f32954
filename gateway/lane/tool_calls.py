"""Serving a `tools/call` on the lane: route it (a listed upstream tool, or a native tool
that needs no request context), run it through the gateway's middleware (the same
instances, in the same order, as every other call: drain, errors, metrics, session and
connection logs, stdio auth, breakers, admission, time limit), and answer with the result's
JSON, stamped for the caller's era. An upstream's result is relayed as the JSON it sent; a
native tool runs as FastMCP runs it (`call_tool` without its middleware pass).

What is skipped is the SDK's per-request dispatch (task groups and streams per request,
pydantic validation of the request and of results into models and back) and, for upstream
tools, FastMCP's component lookup through providers and transforms.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import mcp_types as mt
from fastmcp import Context, FastMCP
from fastmcp.exceptions import FastMCPError
from fastmcp.server.middleware import Middleware, MiddlewareContext
from fastmcp.tools import FunctionTool, ToolResult
from fastmcp.tools.base import RawStructuredToolResult

from archon_gateway.gateway.catalog.view import META_TOOLS
from archon_gateway.gateway.core import sdk_compat
from archon_gateway.gateway.lane.requests import LaneRequest
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


class LaneContext:
    """What the gateway's middleware reads of FastMCP's Context on a lane call."""

    def __init__(self, server: FastMCP[Any], transport: str, session_id: str | None) -> None:
        self.fastmcp = server
        self.transport = transport
        self._session_id = session_id

    @property
    def session_id(self) -> str:
        if self._session_id is None:
            raise RuntimeError("no session: a 2026-07-28 request is its own connection")
        return self._session_id


class RelayedResult:
    """An upstream's tools/call result as the middleware sees it (only `is_error` is read)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.is_error = bool(raw.get("isError"))


class CallLane:
    def __init__(
        self,
        server: FastMCP[Any],
        pool: UpstreamPool | None,
        profile_allows: ProfileAllows,
        served: Callable[[str], None] = lambda transport: None,
    ) -> None:
        self._native: set[str] = set()  # filled once the server starts (learn_native_tools)
        self._served = served
        self._server = server
        self._pool = pool
        self._profile_allows = profile_allows
        self._chain_of: tuple[list[Middleware], list[Callable[..., Awaitable[Any]]]] | None = None
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
        session_id: str | None,
    ) -> dict[str, Any]:
        """The JSON-RPC `result` for the request: the upstream's result, or the one-line
        error result every other path gives (`isError`)."""
        self._served(transport)
        params = mt.CallToolRequestParams.model_construct(
            name=request.name, arguments=request.arguments
        )
        context = MiddlewareContext(
            message=params,
            fastmcp_context=cast(Context, LaneContext(self._server, transport, session_id)),
            source="client",
            type="request",
            method="tools/call",
        )

        async def relay(_: MiddlewareContext[Any]) -> RelayedResult | ToolResult:
            if isinstance(route, NativeRoute):
                return await self._server.call_tool(
                    route.name, request.arguments, run_middleware=False
                )
            raw = await route.upstream.call(route.tool, request.arguments, progress, caller)
            return RelayedResult(raw)

        try:
            outcome = await self._chained(relay)(context)
        except FastMCPError as exc:
            result: dict[str, Any] = _error_result(str(exc))
        except Exception:
            # As FastMCP's own path does: the client gets one line, the log the traceback.
            log.exception("lane call of %s failed", request.name)
            result = _error_result(f"Error calling tool {request.name!r}")
        else:
            result = _checked(outcome, route, modern=request.modern_version is not None)
        if request.modern_version is not None:
            result = self._stamped(result)
        return result

    def _chained(
        self, relay: Callable[[MiddlewareContext[Any]], Awaitable[RelayedResult | ToolResult]]
    ) -> Callable[[MiddlewareContext[Any]], Awaitable[Any]]:
        call_next: Callable[[MiddlewareContext[Any]], Awaitable[Any]] = relay
        for hook in reversed(self._hooks()):
            call_next = partial(hook, call_next=call_next)
        return call_next

    def _hooks(self) -> list[Callable[..., Awaitable[Any]]]:
        """The hooks FastMCP would run for a tool call, outermost first: each middleware's
        own `__call__`, or those of `on_message`, `on_request`, `on_call_tool` it overrides
        (the base ones only pass the call on). Recomputed when the server's list changes
        (the serve loop adds its drain)."""
        current = self._server.middleware
        if self._chain_of is None or self._chain_of[0] != current:
            self._chain_of = (list(current), [h for m in current for h in _call_hooks(m)])
        return self._chain_of[1]

    def _stamped(self, result: dict[str, Any]) -> dict[str, Any]:
        if self._server_info is None:
            self._server_info = sdk_compat.server_info_stamp(self._server)
        meta = result.get("_meta")
        stamp = {SERVER_INFO_META: dict(self._server_info)}
        result["_meta"] = {**meta, **stamp} if isinstance(meta, dict) else stamp
        result.setdefault("resultType", "complete")
        return result


def _call_hooks(middleware: Middleware) -> list[Callable[..., Awaitable[Any]]]:
    kind = type(middleware)
    if kind.__call__ is not Middleware.__call__:
        return [middleware]
    hooks = ("on_message", "on_request", "on_call_tool")  # the order __call__ nests them
    return [getattr(middleware, h) for h in hooks if getattr(kind, h) is not getattr(Middleware, h)]


def _takes_only_arguments(tool: FunctionTool) -> bool:
    arguments = set((tool.parameters or {}).get("properties") or {})
    return set(inspect.signature(tool.fn).parameters) <= arguments


def _checked(outcome: Any, route: Route, *, modern: bool) -> dict[str, Any]:
    if isinstance(outcome, ToolResult):
        return _tool_result(outcome, modern=modern)
    raw: dict[str, Any] = outcome.raw
    if not isinstance(raw.get("content"), list):
        assert isinstance(route, UpstreamRoute)
        return _error_result(
            f"upstream '{route.upstream.name}' returned an invalid result for "
            f"{route.tool.exposed_name}: 'content' is not a list"
        )
    return raw


def _tool_result(result: ToolResult, *, modern: bool) -> dict[str, Any]:
    """A native tool's result on the wire, as FastMCP's tools/call handler shapes it: a
    handshake-era client gets a non-object structured value under `result`."""
    structured, meta = result.structured_content, result.meta
    fastmcp_meta = (meta or {}).get("fastmcp")
    wrapped = isinstance(fastmcp_meta, dict) and fastmcp_meta.get("wrap_result") is True
    raw_value = isinstance(result, RawStructuredToolResult) or (
        structured is not None and not isinstance(structured, dict)
    )
    if not modern and raw_value and not wrapped:
        structured = {"result": structured}
        extra = fastmcp_meta if isinstance(fastmcp_meta, dict) else {}
        meta = {**(meta or {}), "fastmcp": {**extra, "wrap_result": True}}
    wire: dict[str, Any] = {
        "content": [
            block.model_dump(by_alias=True, mode="json", exclude_none=True)
            for block in result.content
        ],
        "isError": bool(result.is_error),
    }
    if structured is not None:
        wire["structuredContent"] = structured
    if meta:
        wire["_meta"] = meta
    return wire


def _error_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}
