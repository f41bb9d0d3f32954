"""Handshake-era HTTP sessions are bounded in time and number.

An ASGI layer on the MCP endpoint (inside the body guard, outside the lane, so it sees
every request of a session, lane-served calls included) records each session's use. A
session with nothing in flight for `idle_s` seconds is closed by a reaper task; at
`max_sessions` a new `initialize` first closes the least recently used idle session, and is
answered 503 when every session is busy. A closed session's id answers 404 (the SDK's
answer for an unknown session), so its client initializes again; what the gateway held for
it (resource subscriptions forwarded upstream) is released by the session's own teardown.
What counts as idle: gateway.session_activity.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archon_gateway.core.sdk_compat import HttpSessionRegistry
from archon_gateway.gateway.asgi_replies import under
from archon_gateway.gateway.body_guard import PARSED_BODY
from archon_gateway.gateway.request_cap import answer_busy
from archon_gateway.gateway.session_activity import SessionActivity

log = logging.getLogger(__name__)

SESSION_HEADER = b"mcp-session-id"


class SessionBounds:
    """The ASGI layer: records use, and admits (or refuses) new sessions at the cap."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: HttpSessionRegistry,
        activity: SessionActivity,
        max_sessions: int,
        paths: tuple[str, ...],
    ) -> None:
        self.app = app
        self._registry = registry
        self._activity = activity
        self._max = max_sessions
        self._paths = paths
        self._admitting = anyio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not under(scope["path"], self._paths):
            await self.app(scope, receive, send)
            return
        session_id = _header(scope, SESSION_HEADER)
        if session_id is not None:
            await self._serve_session_request(session_id, scope, receive, send)
        elif _is_initialize(scope.get(PARSED_BODY)):
            await self._serve_initialize(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve_session_request(
        self, session_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if session_id not in self._registry:  # unknown or closed: the SDK answers 404
            await self.app(scope, receive, send)
            return
        stream = scope["method"] == "GET"
        self._activity.began(session_id, stream=stream)
        try:
            await self.app(scope, receive, send)
        finally:
            self._activity.ended(session_id, stream=stream)
            if session_id not in self._registry:  # ended by this request (DELETE)
                self._activity.forget(session_id)

    async def _serve_initialize(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._admitting:  # two initializes at the cap must not both take a slot
            refusal = await self._make_room()
        if refusal is not None:
            await answer_busy(send, _request_id(scope.get(PARSED_BODY)), refusal)
            return

        async def learn_session(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                for name, value in message.get("headers", ()):
                    if name.lower() == SESSION_HEADER:
                        self._activity.opened(value.decode("latin-1"))
            await send(message)

        await self.app(scope, receive, learn_session)

    async def _make_room(self) -> str | None:
        """None when a new session fits (after closing an idle one if needed); else why not."""
        if len(self._registry) < self._max:
            return None
        self._activity.keep_only(self._registry.ids())
        victim = self._activity.least_recently_used_idle()
        if victim is None:
            return (
                f"too many open sessions: all {self._max} (http_max_sessions) have a request "
                "in flight; retry shortly"
            )
        self._activity.forget(victim)
        await self._registry.close(victim)
        log.info("closed the least recently used idle HTTP session to admit a new one")
        return None


async def reap_idle_sessions(
    registry: HttpSessionRegistry,
    activity: SessionActivity,
    idle_s: float,
    clock: Callable[[], float] = anyio.current_time,
) -> None:
    """Close sessions idle for `idle_s` seconds, for as long as it runs."""
    while True:
        activity.keep_only(registry.ids())
        for session_id in activity.expired(idle_s):
            activity.forget(session_id)
            if await registry.close(session_id):
                log.info("closed an HTTP session idle for %g s", idle_s)
        due = activity.next_expiry(idle_s)
        # New sessions expire no sooner than idle_s from now; busy ones only later.
        wait = idle_s if due is None else max(0.0, due - clock())
        await anyio.sleep(min(wait, idle_s) + 0.001)


def bound_sessions(
    app: Starlette,
    *,
    idle_s: float,
    max_sessions: int,
    paths: tuple[str, ...],
    after: object,
) -> None:
    """Add the ASGI layer to `app` (not started yet) just inside the middleware `after`,
    and have the app's lifespan run the reaper."""
    from starlette.middleware import Middleware

    registry = HttpSessionRegistry(app)
    activity = SessionActivity(anyio.current_time)
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with inner(target) as state, anyio.create_task_group() as tasks:
            registry.take_over_limits(max_sessions)  # the session manager exists by now
            tasks.start_soon(reap_idle_sessions, registry, activity, idle_s)
            try:
                yield state
            finally:
                tasks.cancel_scope.cancel()

    app.router.lifespan_context = lifespan
    layer = Middleware(
        SessionBounds,
        registry=registry,
        activity=activity,
        max_sessions=max_sessions,
        paths=paths,
    )
    where = [i for i, m in enumerate(app.user_middleware) if m.cls is after]
    app.user_middleware.insert(where[0] + 1 if where else len(app.user_middleware), layer)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_initialize(body: Any) -> bool:
    return isinstance(body, dict) and body.get("method") == "initialize"


def _request_id(body: Any) -> Any:
    return body.get("id") if isinstance(body, dict) else None
