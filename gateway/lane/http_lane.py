"""The lane on the HTTP front door: an ASGI layer, innermost (after auth, the profile path and
the body guard), that serves a POSTed `tools/call` the lane takes and hands every other
request to the SDK's streamable-HTTP app.

The reply is plain JSON. It becomes an SSE stream only when the call has something to say
before its result (progress, log lines): the response starts at the first such message.

Taken: a 2026-07-28 request whose headers agree with its body (the SDK answers the rest);
a handshake-era request on an initialized session of this gateway whose client declared
nothing an upstream could ask (others are served by the SDK, which can put questions to
them on the request's own stream).
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from archon_gateway.catalog.view import PROFILE_STATE
from archon_gateway.core import sdk_compat
from archon_gateway.core.bounded_json import dump_json
from archon_gateway.gateway.body_guard import PARSED_BODY
from archon_gateway.gateway.lane.client_channels import StreamCaller
from archon_gateway.gateway.lane.lane_calls import CallLane, Route
from archon_gateway.gateway.lane.requests import LaneRequest, lane_request
from archon_gateway.gateway.session_registry import ClientSession, SessionRegistry
from archon_gateway.upstreams.client_requests import may_be_asked

TRANSPORT = "streamable-http"


class HttpLane:
    def __init__(
        self, app: ASGIApp, *, calls: CallLane, sessions: SessionRegistry, mcp_path: str
    ) -> None:
        self.app = app
        self._calls = calls
        self._sessions = sessions
        self._path = mcp_path.rstrip("/") or "/"
        self._running: dict[tuple[str, str | int], anyio.CancelScope] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self._take(scope) if scope["type"] == "http" else None
        if taken is None:
            self._note_cancel(scope)
            await self.app(scope, receive, send)
            return
        request, route, session, version = taken
        session_id = session.session_id if session is not None else None
        reply = _Reply(send, session_id)
        async with anyio.create_task_group() as tasks:
            # The call ends when its client goes away, or cancels it on its session.
            key = (session_id, request.request_id) if session_id is not None else None
            if key is not None:
                self._running[key] = tasks.cancel_scope
            tasks.start_soon(_end_on_disconnect, receive, tasks.cancel_scope)
            try:
                await reply.serve(self._calls, request, route, version, session, scope)
            finally:
                if key is not None and self._running.get(key) is tasks.cancel_scope:
                    del self._running[key]
                tasks.cancel_scope.cancel()
        if not reply.started:
            # Cancelled: the POST still needs an answer; the SDK's path gives this one.
            await reply.cancelled(request.request_id)

    def _note_cancel(self, scope: Scope) -> None:
        """A handshake-era client POSTs `notifications/cancelled` on its session: a call the
        lane serves stops (the SDK hears it too, for the requests it serves)."""
        message = scope.get(PARSED_BODY) if scope["type"] == "http" else None
        if not isinstance(message, dict) or message.get("method") != "notifications/cancelled":
            return
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        session_id = _headers(scope).get("mcp-session-id")
        if session_id is not None and isinstance(request_id, str | int):
            running = self._running.get((session_id, request_id))
            if running is not None:
                running.cancel()

    def _take(self, scope: Scope) -> tuple[LaneRequest, Route, ClientSession | None, str] | None:
        if scope["method"] != "POST" or scope["path"].rstrip("/") != self._path:
            return None
        request = lane_request(scope.get(PARSED_BODY))
        if request is None:
            return None
        headers = _headers(scope)
        session_id = headers.get("mcp-session-id")
        session = None
        if request.modern_version is not None:
            version = request.modern_version
            if session_id is not None or not _headers_agree(headers, request):
                return None
        else:
            session = self._sessions.by_id(session_id) if session_id else None
            if session is not None and session.transport != TRANSPORT:
                session = None  # only an HTTP session is found by its header
            connection = session.ready() if session is not None else None
            if connection is None or may_be_asked(connection.client_capabilities):
                return None
            version = connection.protocol_version
        profile = (scope.get("state") or {}).get(PROFILE_STATE)
        route = self._calls.route(request.name, profile if isinstance(profile, str) else None)
        if route is None:
            return None
        return request, route, session, version


class _Reply:
    """One call's HTTP response: JSON, or SSE once a notification comes first."""

    def __init__(self, send: Send, session_id: str | None) -> None:
        self._send = send
        self._session_id = session_id
        self._headers = [(b"mcp-session-id", session_id.encode())] if session_id else []
        self._streaming = False
        self.started = False
        self._lock = anyio.Lock()

    async def serve(
        self,
        calls: CallLane,
        request: LaneRequest,
        route: Route,
        version: str,
        session: ClientSession | None,
        scope: Scope,
    ) -> None:
        caller = StreamCaller(self._notify, version, request.meta, request.progress_token)
        state = scope.get("state") or {}
        profile = state.get(PROFILE_STATE)
        result = await calls.call(
            request,
            route,
            caller,
            caller.progress if request.progress_token is not None else None,
            transport=TRANSPORT,
            session=session,
            principal=str(state.get("principal", "anonymous")),
            credential_kind=state.get("credential_kind"),
            profile=profile if isinstance(profile, str) else None,
        )
        reply = dump_json({"jsonrpc": "2.0", "id": request.request_id, "result": result})
        async with self._lock:
            if self._streaming:
                await self._event(reply)
                await self._send({"type": "http.response.body", "body": b""})
                return
            await self._start(b"application/json", len(reply))
            await self._send({"type": "http.response.body", "body": reply})

    async def _notify(self, method: str, params: dict[str, Any]) -> None:
        message = dump_json({"jsonrpc": "2.0", "method": method, "params": params})
        async with self._lock:
            if not self._streaming:
                self._streaming = True
                await self._start(b"text/event-stream", None)
            await self._event(message)

    async def cancelled(self, request_id: str | int) -> None:
        """The answer to a request its client cancelled (as the SDK's path answers it)."""
        error = sdk_compat.cancelled_request_error()
        body = dump_json({"jsonrpc": "2.0", "id": request_id, "error": error})
        await self._start(b"application/json", len(body))
        await self._send({"type": "http.response.body", "body": body})

    async def _start(self, content_type: bytes, length: int | None) -> None:
        self.started = True
        headers = [(b"content-type", content_type), *self._headers]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        else:
            headers.append((b"cache-control", b"no-cache"))
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def _event(self, data: bytes) -> None:
        body = b"event: message\r\ndata: " + data + b"\r\n\r\n"
        await self._send({"type": "http.response.body", "body": body, "more_body": True})


async def _end_on_disconnect(receive: Receive, call: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    call.cancel()


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name.startswith(b"mcp-")
    }


def _headers_agree(headers: dict[str, str], request: LaneRequest) -> bool:
    """A 2026-07-28 request's headers mirror its body; any disagreement is the SDK's to
    refuse."""
    return (
        headers.get("mcp-protocol-version") == request.modern_version
        and headers.get("mcp-method", "tools/call") == "tools/call"
        and headers.get("mcp-name", request.name) == request.name
    )
