"""The one seam onto private or undocumented internals of fastmcp, mcp, uvicorn and
sse-starlette.

Whatever the gateway needs from those packages beyond their documented API lives here, each
entry with a one-line reason. tests/core/test_sdk_compat.py exercises every entry against
the installed versions, so an upgrade that moves one fails in that test rather than at run
time, and it fails when a private name is used anywhere else in the source tree.

Imports: fastmcp is imported here, since every module that uses the seam has loaded it
already (the CLI's fast paths never import this module). uvicorn, sse-starlette and
mcp.server.* are imported where they are used: only serving needs them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

# Why: fastmcp's own signatures name these (Provider.get_tasks returns FastMCPComponents,
# Tool.task_config is a TaskConfig, Provider._get_tool takes a VersionSpec), yet it exports
# them only from its undocumented fastmcp.utilities package.
from fastmcp.utilities.components import FastMCPComponent as FastMCPComponent
from fastmcp.utilities.tasks import TaskConfig as TaskConfig
from fastmcp.utilities.versions import VersionSpec as VersionSpec

if TYPE_CHECKING:
    import socket

    import uvicorn
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.server.connection import Connection as Connection
    from mcp.server.subscriptions import SubscriptionBus
    from mcp.shared.message import SessionMessage
    from starlette.applications import Starlette

    from archon_gateway.core.connection_slots import ConnectionSlots

log = logging.getLogger(__name__)

# `Connection` (the SDK's per-client connection) is re-exported for type annotations only.
__all__ = [
    "FastMCPComponent",
    "HttpSessionRegistry",
    "LifespanHookServer",
    "TaskConfig",
    "VersionSpec",
    "allow_sse_streams",
    "allowed_log_levels",
    "cancelled_request_error",
    "drop_cut_stream_errors",
    "embedded_uvicorn",
    "http_session_counter",
    "lifespan",
    "lift_http_body_limit",
    "new_subscription_bus",
    "publish_list_changed",
    "publish_resource_updated",
    "publish_tools_changed",
    "refuse_before_initialize",
    "run_session",
    "search_tokens",
    "serve_resource_subscriptions",
    "serve_subscriptions_listen",
    "serve_uvicorn",
    "server_info_stamp",
    "session_connection",
    "slow_client_protocol",
    "stop_sse_streams",
    "stop_uvicorn",
    "tool_error_cause",
    "tool_error_result",
    "tool_failure_text",
    "transport_set",
    "when_connection_closes",
    "wire_tool_result",
]

# --- fastmcp: the server's lifespan --------------------------------------------------------


class LifespanHookServer(FastMCP[Any]):
    """FastMCP whose every lifespan entry goes through `around_lifespan`."""

    def around_lifespan(
        self, fastmcp_lifespan: Callable[[], AbstractAsyncContextManager[None]]
    ) -> AbstractAsyncContextManager[None]:
        """Override to hold resources around FastMCP's own lifespan (`fastmcp_lifespan()`)."""
        return fastmcp_lifespan()

    # Why: every run path (http_app's lifespan, the in-memory Client, run_*) enters the
    # private `_lifespan_manager`; overriding it is the only hook around all of them.
    @asynccontextmanager
    async def _lifespan_manager(self) -> AsyncGenerator[None, None]:
        async with self.around_lifespan(super()._lifespan_manager):
            yield


def lifespan(server: FastMCP[Any]) -> AbstractAsyncContextManager[None]:
    """The server's lifespan (ref-counted inside FastMCP, so nested entries share it)."""
    # Why: the serve loop enters it once for stdio and HTTP together; FastMCP has no public
    # way to enter it outside its own run_* methods.
    return server._lifespan_manager()


# --- fastmcp: the low-level MCP server -----------------------------------------------------


async def run_session(
    server: FastMCP[Any],
    read: MemoryObjectReceiveStream[SessionMessage | Exception],
    write: MemoryObjectSendStream[SessionMessage],
) -> None:
    """Serve one MCP session over the gateway's own streams until `read` ends."""
    # Why: FastMCP serves a session only over the SDK's stdio_server, which we cannot use
    # (uncancellable reader thread); its private low-level server takes any streams.
    low_level = server._mcp_server
    await low_level.run(read, write, low_level.create_initialization_options())


NOT_INITIALIZED = (
    "Invalid Request: the session is not initialized; send initialize (and "
    "notifications/initialized) first"
)


def refuse_before_initialize(server: FastMCP[Any]) -> None:
    """Answer a request sent before `initialize` with "the session is not initialized"
    (-32600), where the SDK answers a bare "Invalid request parameters"."""
    # Why: the SDK's init gate sits in its provisional low-level `Server.middleware` chain
    # (reached through the private `_mcp_server`), and the connection's handshake state is
    # on the private `ServerSession._connection`.
    from mcp.shared.exceptions import MCPError

    low_level = server._mcp_server

    async def gate(ctx: Any, call_next: Callable[[Any], Any]) -> Any:
        method = ctx.method
        if ctx.request_id is not None and method not in ("initialize", "ping"):
            connection = session_connection(ctx.session)
            if (
                connection is not None
                and not connection.initialize_accepted
                and low_level.get_request_handler(method) is not None
            ):
                raise MCPError(code=-32600, message=NOT_INITIALIZED)
        return await call_next(ctx)

    low_level.middleware.append(gate)


# While a listen stream is open: (its resource URIs, a key for the stream) -> a context.
ListenHook = Callable[[list[str], object], AbstractAsyncContextManager[None]]


def serve_subscriptions_listen(
    server: FastMCP[Any], bus: SubscriptionBus, around: ListenHook | None = None
) -> None:
    """Answer `subscriptions/listen` (2026-07-28 clients) with events published on `bus`;
    `around` is entered for as long as each stream is open (with the resource URIs it
    listens to), so the gateway can subscribe upstream."""
    # Why: FastMCP has no public hook for this request; its private low-level server does,
    # and the handler lives in the SDK's unexported mcp.server.subscriptions.
    import mcp_types as mt
    from mcp.server.subscriptions import ListenHandler

    listen = ListenHandler(bus)

    async def handler(ctx: Any, params: mt.SubscriptionsListenRequestParams) -> Any:
        if around is None:
            return await listen(ctx, params)
        uris = list(params.notifications.resource_subscriptions or ())
        async with around(uris, object()):
            return await listen(ctx, params)

    server._mcp_server.add_request_handler(
        "subscriptions/listen", mt.SubscriptionsListenRequestParams, handler
    )


SubscribeHandler = Callable[[str, object], Awaitable[None]]


def serve_resource_subscriptions(
    server: FastMCP[Any], subscribe: SubscribeHandler, unsubscribe: SubscribeHandler
) -> None:
    """Answer handshake-era `resources/subscribe` / `resources/unsubscribe` with
    `(uri, client connection)` (which also declares `resources.subscribe`)."""
    # Why: FastMCP registers no handler for these; only its private low-level server takes
    # one, and the SDK derives the capability from the handler's presence.
    import mcp_types as mt

    async def on_subscribe(ctx: Any, params: mt.SubscribeRequestParams) -> mt.EmptyResult:
        await subscribe(str(params.uri), session_connection(ctx.session) or ctx.session)
        return mt.EmptyResult()

    async def on_unsubscribe(ctx: Any, params: mt.UnsubscribeRequestParams) -> mt.EmptyResult:
        await unsubscribe(str(params.uri), session_connection(ctx.session) or ctx.session)
        return mt.EmptyResult()

    low_level = server._mcp_server
    low_level.add_request_handler("resources/subscribe", mt.SubscribeRequestParams, on_subscribe)
    low_level.add_request_handler(
        "resources/unsubscribe", mt.UnsubscribeRequestParams, on_unsubscribe
    )


def new_subscription_bus() -> SubscriptionBus:
    """An in-process bus for `serve_subscriptions_listen`."""
    # Why: the SDK's only bus implementation, in the unexported mcp.server.subscriptions.
    from mcp.server.subscriptions import InMemorySubscriptionBus

    return InMemorySubscriptionBus()


async def publish_tools_changed(bus: SubscriptionBus) -> None:
    """Tell every `subscriptions/listen` stream that the tool list changed."""
    # Why: the event type lives in the unexported mcp.server.subscriptions.
    from mcp.server.subscriptions import ToolsListChanged

    await bus.publish(ToolsListChanged())


async def publish_list_changed(bus: SubscriptionBus, kind: Literal["resources", "prompts"]) -> None:
    """Tell every `subscriptions/listen` stream that resources or prompts changed."""
    # Why: the event types live in the unexported mcp.server.subscriptions.
    from mcp.server.subscriptions import PromptsListChanged, ResourcesListChanged

    await bus.publish(ResourcesListChanged() if kind == "resources" else PromptsListChanged())


async def publish_resource_updated(bus: SubscriptionBus, uri: str) -> None:
    """Tell the `subscriptions/listen` streams that listen to `uri` that it changed."""
    # Why: the event type lives in the unexported mcp.server.subscriptions.
    from mcp.server.subscriptions import ResourceUpdated

    await bus.publish(ResourceUpdated(uri=uri))


def session_connection(session: object) -> Connection | None:
    """The per-client Connection behind a request's ServerSession (None if there is none)."""
    # Why: a ServerSession is a per-request view; the per-client Connection that outlives
    # the request (to notify the client later) is reachable only as its private
    # `_connection`. At run time a missing one degrades to "not notified".
    from mcp.server.connection import Connection

    connection = getattr(session, "_connection", None)
    return connection if isinstance(connection, Connection) else None


def when_connection_closes(client: object, cleanup: Callable[[], Awaitable[None]]) -> bool:
    """Run `cleanup` when the handshake-era client connection `client` (as given by
    `session_connection`) ends, however it ends (DELETE, idle expiry, eviction, a crash);
    False when `client` is not such a connection."""
    # Why: the SDK's per-connection teardown is `Connection.exit_stack`, unwound (shielded)
    # when the connection's loop ends; Connection lives in the undocumented
    # mcp.server.connection.
    from mcp.server.connection import Connection

    if not isinstance(client, Connection):
        return False
    client.exit_stack.push_async_callback(cleanup)
    return True


def allowed_log_levels(version: str, meta: Any) -> frozenset[str]:
    """The log levels a request opted into (2026-07-28: its `_meta` log level and above;
    handshake era: every level)."""
    # Why: the SDK's rule lives in its undocumented mcp.server.connection; a call served off
    # the SDK's runner must filter log lines the same way.
    from mcp.server.connection import allowed_log_levels as levels

    return frozenset(levels(version, meta))


def server_info_stamp(server: FastMCP[Any]) -> dict[str, Any]:
    """The `serverInfo` `_meta` value a 2026-07-28 result carries (a fresh dict)."""
    # Why: the SDK builds it on its private low-level server; results served off the SDK's
    # runner must carry the same stamp.
    stamp: dict[str, Any] = server._mcp_server.server_info_stamp
    return stamp


@contextmanager
def transport_set(name: Literal["stdio", "sse", "streamable-http"]) -> Iterator[None]:
    """Within the block, FastMCP contexts report `name` as the transport."""
    # Why: FastMCP sets its transport context variable only in its own run_* methods (from
    # the undocumented fastmcp.server.context); our stdio loop must set it for middleware.
    from fastmcp.server.context import reset_transport, set_transport

    token = set_transport(name)
    try:
        yield
    finally:
        reset_transport(token)


# --- fastmcp / mcp: tool errors and HTTP sessions ------------------------------------------


def tool_error_cause(exc: BaseException) -> BaseException | None:
    """What a tool raised, when `exc` is FastMCP's ToolError wrapping it; else None."""
    # Why: FastMCP wraps a tool's exception in ToolError before middleware sees it, keeping
    # the original only as `__cause__` (undocumented); breakers and metrics judge by it.
    return exc.__cause__ if isinstance(exc, ToolError) else None


def search_tokens(text: str) -> list[str]:
    """The words fastmcp's BM25 search transform indexes: NFKC-normalised, case-folded
    Unicode alphanumeric runs of two or more characters (`_` splits words)."""
    # Why: the catalog's search keeps its own incremental BM25 index (fastmcp's rebuilds
    # the whole index whenever the catalog's hash changes) but tokenises exactly as fastmcp
    # does, with its private `_tokenize`.
    from fastmcp.server.transforms.search.bm25 import _tokenize

    return _tokenize(text)


def http_session_counter(app: Starlette) -> Callable[[], int]:
    """Open streamable-HTTP sessions of an app from FastMCP's `http_app` (0 before the app
    starts, after it stops, and if the count cannot be read)."""
    # Why: neither package counts sessions publicly. fastmcp's MCP endpoint keeps the SDK's
    # StreamableHTTPSessionManager as an undocumented `session_manager` (set when the app
    # starts), and the manager keeps its sessions in the private `_server_instances`.
    return HttpSessionRegistry(app).__len__


def _mcp_endpoints(app: Starlette) -> list[Any]:
    """The app's MCP endpoints: those carrying fastmcp's `session_manager` attribute."""
    endpoints = [getattr(route, "endpoint", None) for route in app.routes]
    return [e for e in endpoints if hasattr(e, "session_manager")]


class HttpSessionRegistry:
    """The open handshake-era sessions of an app from FastMCP's `http_app`, by id: count,
    look up, close one (its id answers 404 from then on), and take over their limits."""

    # Why: fastmcp keeps the SDK's StreamableHTTPSessionManager as an undocumented
    # `session_manager` on its MCP endpoint (created when the app starts); the sessions are
    # the manager's private `_server_instances`, and closing one so that its id answers
    # 404 at once is the manager's private `_discard_session` (forget, then terminate).
    def __init__(self, app: Starlette) -> None:
        self._endpoints = _mcp_endpoints(app)

    def _manager(self) -> Any:
        return getattr(self._endpoints[0], "session_manager", None) if self._endpoints else None

    def _sessions(self) -> dict[str, Any]:
        manager = self._manager()
        found = getattr(manager, "_server_instances", None) if manager is not None else None
        return found if isinstance(found, dict) else {}

    def __len__(self) -> int:
        return len(self._sessions())

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions()

    def ids(self) -> list[str]:
        return list(self._sessions())

    def take_over_limits(self, max_sessions: int) -> None:
        """Once the app has started: the gateway expires idle sessions itself (the SDK's
        timer does not see calls the lane serves), and the SDK refuses sessions past
        `max_sessions` as a backstop to the gateway's own admission."""
        manager = self._manager()
        if manager is not None:
            manager.session_idle_timeout = None  # read for each new session's transport
            manager.max_sessions = max_sessions

    async def close(self, session_id: str) -> bool:
        """Close the session (its streams end; its id answers 404); False if it was gone."""
        manager = self._manager()
        transport = self._sessions().get(session_id)
        if manager is None or transport is None:
            return False
        await manager._discard_session(session_id, transport)
        return True


def lift_http_body_limit(app: Starlette, max_bytes: int) -> None:
    """Let the SDK's streamable-HTTP transport in an app from FastMCP's `http_app` take
    bodies up to `max_bytes` (the gateway's JsonBodyGuard enforces that limit first, with a
    JSON-RPC error): its own limit is 4 MiB, answered in plain text."""
    # Why: fastmcp builds the SDK's StreamableHTTPSessionManager in the app's lifespan
    # without passing its `max_request_body_size`; the manager has already wrapped its
    # handler in a RequestBodyLimitMiddleware (its `asgi_app`, undocumented) whose
    # `max_body_size` is read on every request, so it is raised once the lifespan built it.
    mcp_apps = _mcp_endpoints(app)
    enter = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncGenerator[Any, None]:
        async with enter(running) as state:
            for mcp_app in mcp_apps:
                manager = mcp_app.session_manager
                limiter = getattr(manager, "asgi_app", None)
                if limiter is None or not hasattr(limiter, "max_body_size"):
                    log.warning("cannot raise the MCP SDK's HTTP body limit to %d", max_bytes)
                    continue
                limiter.max_body_size = max(max_bytes, limiter.max_body_size)
                manager.max_request_body_size = limiter.max_body_size
            yield state

    app.router.lifespan_context = lifespan


# --- sse-starlette -------------------------------------------------------------------------


def allow_sse_streams() -> None:
    """Let SSE streams run (the flag is process-global: a previous serve may have set it)."""
    # Why: sse-starlette ends open streams only when its AppStatus.should_exit is set.
    from sse_starlette.sse import AppStatus

    AppStatus.should_exit = False


def stop_sse_streams() -> None:
    """End every open SSE stream (a session's GET stream) of this process."""
    # Why: with uvicorn's signal capture off, nothing else sets AppStatus.should_exit, and
    # open streams would hold shutdown until uvicorn's timeout cuts them.
    from sse_starlette.sse import AppStatus

    AppStatus.should_exit = True


# --- uvicorn -------------------------------------------------------------------------------


def embedded_uvicorn(config: uvicorn.Config, on_started: Callable[[], None]) -> uvicorn.Server:
    """A uvicorn server that leaves signals to the gateway and calls `on_started` once it
    listens."""
    # Why: uvicorn takes SIGINT/SIGTERM and has no "listening" callback; overriding its
    # undocumented `capture_signals` and `startup` (below) is the only way around both.
    return _embedded_uvicorn_class()(config, on_started)


@cache
def _embedded_uvicorn_class() -> Callable[[uvicorn.Config, Callable[[], None]], uvicorn.Server]:
    import uvicorn

    class EmbeddedUvicorn(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_started = on_started

        # Why: uvicorn installs its own SIGINT/SIGTERM handlers in the undocumented
        # `capture_signals`; the gateway owns signals (both transports stop together).
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        # Why: uvicorn has no "listening" callback; `startup` and its `started` flag are
        # undocumented.
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                self._on_started()

    return EmbeddedUvicorn


async def serve_uvicorn(server: uvicorn.Server, sockets: list[socket.socket]) -> bool:
    """Serve on `sockets` until stopped; False when the app failed to start."""
    # Why: uvicorn reports a failed startup (the app's lifespan raised) by sys.exit, which
    # is undocumented; the gateway reports it as an error instead of exiting.
    try:
        await server.serve(sockets=sockets)
    except SystemExit:
        return False
    return True


def stop_uvicorn(server: uvicorn.Server) -> None:
    """Ask uvicorn to stop accepting and finish (within its graceful-shutdown timeout)."""
    # Why: `should_exit` is uvicorn's undocumented stop flag (what its signal handler sets).
    server.should_exit = True


def slow_client_protocol(
    header_timeout: float, body_timeout: float, slots: ConnectionSlots | None = None
) -> type[Any]:
    """uvicorn's HTTP protocol (httptools' C parser when installed, else h11) with read
    deadlines: a connection must send a request's
    headers within `header_timeout` seconds of opening (or of its first byte after a
    keep-alive pause), and its body may stall at most `body_timeout` seconds between
    chunks; otherwise the connection is closed. (Idle keep-alive connections are closed by
    uvicorn's own `timeout_keep_alive`.) With `slots`, each connection takes a slot when it
    opens and reports when it is waiting (no request in flight) or busy; a connection the
    slots refuse is answered 503 with `slots.refusal` and closed."""
    # Why: uvicorn has no header or body read timeout, and its only connection bound
    # (`limit_concurrency`) counts idle connections against requests; its protocol class's
    # `cycle`, `pipeline`, `loop`, `data_received` and `on_response_complete` are
    # undocumented.
    import asyncio

    base = _http_protocol()

    class SlowClientGuard(base):  # type: ignore[valid-type,misc]
        _read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            if slots is not None and not slots.admit(self):
                transport.write(_refusal(slots.refusal))
                transport.close()
                return
            self._arm(header_timeout)

        def cut(self) -> None:
            """Close now: the connection slots need its place (it is only waiting)."""
            self._cut()

        def data_received(self, data: bytes) -> None:
            self._data_received(data)
            if slots is not None and self.cycle is not None and not self.cycle.response_complete:
                slots.busy(self)  # its headers are in: it keeps its slot

        def _data_received(self, data: bytes) -> None:
            before = self.cycle
            between_requests = before is None or before.response_complete
            super().data_received(data)
            if self.cycle is before:
                if between_requests and self._read_timer is None:
                    self._arm(header_timeout)  # a new request started arriving
                elif not between_requests and before is not None and before.more_body:
                    self._arm(body_timeout)  # another body chunk: the stall clock restarts
            elif self.cycle is not None and self.cycle.more_body:
                self._arm(body_timeout)
            else:
                self._disarm()  # the request is read; the app's time limits take over
            if self.cycle is not None and not self.cycle.more_body and self.cycle is not before:
                self._disarm()

        def on_response_complete(self) -> None:
            self._disarm()
            super().on_response_complete()
            queued = getattr(self, "pipeline", ())  # httptools queues pipelined requests
            idle = not queued and (self.cycle is None or self.cycle.response_complete)
            if slots is not None and idle and not self.transport.is_closing():
                slots.waiting(self)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if slots is not None:
                slots.closed(self)
            super().connection_lost(exc)

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._read_timer = self.loop.call_later(seconds, self._cut)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _cut(self) -> None:
            self._read_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return SlowClientGuard


def _refusal(reason: str) -> bytes:
    body = reason.encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def _http_protocol() -> type[Any]:
    """httptools' protocol (a C parser: several times faster than h11 per request), or
    h11's when httptools is not installed; both keep `cycle` the same way."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def drop_cut_stream_errors(record: logging.LogRecord) -> bool:
    """A logging filter for "uvicorn.error": drops the error uvicorn logs for each stream
    cut at shutdown (cut on purpose)."""
    # Why: uvicorn logs a cut response only as this exact, undocumented message.
    return record.getMessage() != "ASGI callable returned without completing response."


# --- fastmcp / mcp: wire shapes a call served off the SDK's runner must mirror --------------


def tool_failure_text(tool: str) -> str:
    """What FastMCP answers (masked) when a tool fails with an unexpected exception."""
    # Why: the text is FastMCP's own (fastmcp.server.server, call_tool), not an API; the
    # lane gives the same line for the same failure.
    return f"Error calling tool {tool!r}"


def cancelled_request_error() -> dict[str, Any]:
    """The JSON-RPC error the SDK answers a cancelled streamable-HTTP request with."""
    # Why: the SDK builds it inline in mcp.server.streamable_http (REQUEST_CANCELLED,
    # "Request cancelled"); a POST the lane served and its client cancelled still
    # needs an answer, and the same one.
    return {"code": -32800, "message": "Request cancelled"}


def tool_error_result(text: str) -> dict[str, Any]:
    """A tools/call result that reports a failure as one line of text (`isError`)."""
    # Why: the shape FastMCP gives a ToolError raised by a tool or its middleware.
    return {"content": [{"type": "text", "text": text}], "isError": True}


def wire_tool_result(result: Any, *, modern: bool) -> dict[str, Any]:
    """A native tool's ToolResult as FastMCP's tools/call handler puts it on the wire: a
    handshake-era client gets a non-object structured value wrapped under `result` (and
    `_meta.fastmcp.wrap_result`); a 2026-07-28 client gets it as it is."""
    # Why: the wrapping happens in FastMCP's handler, keyed on its RawStructuredToolResult
    # (exported only from the undocumented fastmcp.tools.base).
    from fastmcp.tools.base import RawStructuredToolResult

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
