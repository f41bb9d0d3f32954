"""The lane on the stdio front door: the line reader offers it each `tools/call` line; what
it takes it serves in a task of its own and answers with one JSON line on stdout (a call the
client cancels gets no answer, as the protocol says).

A handshake-era call is taken once the client's session is initialized (the session is
learnt at `initialize`, through `SessionCapture`); before that the SDK answers "not
initialized"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from archon_gateway.gateway.core import sdk_compat
from archon_gateway.gateway.core.bounded_json import dump_json
from archon_gateway.gateway.lane.callers import EnvelopeCaller, SessionCaller
from archon_gateway.gateway.lane.proxied_calls import ProxiedCallLane, Route
from archon_gateway.gateway.lane.requests import LaneRequest, lane_request

if TYPE_CHECKING:
    from archon_gateway.gateway.core.sdk_compat import Connection

# Writes one line (a JSON-RPC message, no newline) to the client, in order with the rest.
SendLine = Callable[[bytes, "str | int | None"], Awaitable[None]]
Spawn = Callable[..., object]


class StdioLane:
    def __init__(self, calls: ProxiedCallLane) -> None:
        self._calls = calls
        self._peer: Connection | None = None
        self._session_id: str | None = None
        self._running: dict[str | int, anyio.CancelScope] = {}

    def attach(self, connection: Connection, session_id: str | None) -> None:
        """The stdio client's handshake-era session (there is one per process)."""
        self._peer, self._session_id = connection, session_id

    def take(self, message: Any, spawn: Spawn, send: SendLine) -> bool:
        """Serve `message` (a parsed line) when it is a call the lane takes; False leaves it
        to the SDK."""
        request = lane_request(message)
        if request is None or request.request_id in self._running:
            return False
        if request.modern_version is None and not self._initialized():
            return False
        if request.modern_version is not None and self._peer is not None:
            return False  # a handshake-era session: the SDK refuses the modern envelope
        route = self._calls.route(request.name)
        if route is None:
            return False
        scope = self._running[request.request_id] = anyio.CancelScope()
        spawn(self._serve, request, route, scope, send)
        return True

    def cancel(self, request_id: Any) -> None:
        """The client cancelled a request: stop it if the lane serves it."""
        if isinstance(request_id, str | int) and (scope := self._running.get(request_id)):
            scope.cancel()

    def _initialized(self) -> bool:
        return self._peer is not None and self._peer.initialized.is_set()

    async def _serve(
        self, request: LaneRequest, route: Route, scope: anyio.CancelScope, send: SendLine
    ) -> None:
        try:
            with scope:
                caller, session_id = self._caller(request, send)
                result = await self._calls.call(
                    request,
                    route,
                    caller,
                    caller.progress if request.progress_token is not None else None,
                    transport="stdio",
                    session_id=session_id,
                )
                reply = {"jsonrpc": "2.0", "id": request.request_id, "result": result}
                await send(dump_json(reply), request.request_id)
            # Cancelled by the client: never answered (the reader settles its count).
        finally:
            del self._running[request.request_id]

    def _caller(
        self, request: LaneRequest, send: SendLine
    ) -> tuple[SessionCaller | EnvelopeCaller, str | None]:
        if request.modern_version is None:
            assert self._peer is not None
            return SessionCaller(self._peer, request.progress_token), self._session_id

        async def notify(method: str, params: dict[str, Any]) -> None:
            await send(dump_json({"jsonrpc": "2.0", "method": method, "params": params}), None)

        version, token = request.modern_version, request.progress_token
        return EnvelopeCaller(notify, version, request.meta, token), None


class SessionCapture(Middleware):
    """Hands the stdio client's session to the lane when it initializes."""

    def __init__(self, lane: StdioLane) -> None:
        self._lane = lane

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        ctx = context.fastmcp_context
        if ctx is not None and ctx.transport == "stdio":
            connection = sdk_compat.session_connection(ctx.session)
            if connection is not None:
                session_id = None
                with suppress(RuntimeError):
                    session_id = ctx.session_id
                self._lane.attach(connection, session_id)
        return result
