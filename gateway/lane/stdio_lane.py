"""The lane on the stdio front door: the line reader offers it each `tools/call` line; what
it takes it serves in a task of its own and answers with one JSON line on stdout (a call the
client cancels gets no answer, as the protocol says).

A handshake-era call is taken once the client's session is initialized (the session is
the stdio client's, from the session registry); before that the SDK answers "not
initialized"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from archon_gateway.core.bounded_json import dump_json
from archon_gateway.gateway.lane.client_channels import SessionCaller, StreamCaller
from archon_gateway.gateway.lane.lane_calls import CallLane, Route
from archon_gateway.gateway.lane.requests import LaneRequest, lane_request
from archon_gateway.gateway.session_registry import ClientSession, SessionRegistry

# Writes one line (a JSON-RPC message, no newline) to the client, in order with the rest.
SendLine = Callable[[bytes, "str | int | None"], Awaitable[None]]
Spawn = Callable[..., object]


class StdioLane:
    def __init__(self, calls: CallLane, sessions: SessionRegistry) -> None:
        self._calls = calls
        self._sessions = sessions
        self._running: dict[str | int, anyio.CancelScope] = {}

    def take(self, message: Any, spawn: Spawn, send: SendLine) -> bool:
        """Serve `message` (a parsed line) when it is a call the lane takes; False leaves it
        to the SDK."""
        request = lane_request(message)
        if request is None or request.request_id in self._running:
            return False
        session = self._sessions.stdio
        if request.modern_version is None and (session is None or session.ready() is None):
            return False
        if request.modern_version is not None and session is not None:
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

    async def _serve(
        self, request: LaneRequest, route: Route, scope: anyio.CancelScope, send: SendLine
    ) -> None:
        try:
            with scope:
                caller, session = self._caller(request, send)
                result = await self._calls.call(
                    request,
                    route,
                    caller,
                    caller.progress if request.progress_token is not None else None,
                    transport="stdio",
                    session=session,
                )
                reply = {"jsonrpc": "2.0", "id": request.request_id, "result": result}
                await send(dump_json(reply), request.request_id)
            # Cancelled by the client: never answered (the reader settles its count).
        finally:
            del self._running[request.request_id]

    def _caller(
        self, request: LaneRequest, send: SendLine
    ) -> tuple[SessionCaller | StreamCaller, ClientSession | None]:
        if request.modern_version is None:
            session = self._sessions.stdio
            connection = session.connection if session is not None else None
            assert connection is not None  # `take` saw it ready
            return SessionCaller(connection, request.progress_token), session

        async def notify(method: str, params: dict[str, Any]) -> None:
            await send(dump_json({"jsonrpc": "2.0", "method": method, "params": params}), None)

        version, token = request.modern_version, request.progress_token
        return StreamCaller(notify, version, request.meta, token), None
