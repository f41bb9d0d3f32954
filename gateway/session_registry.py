"""The one registry of handshake-era client sessions: each is resolved once, at
`initialize` (connection, session id, transport, the client's declared capabilities and
who it is), and read by everything per-session: the lane (which session a call runs
on), list_changed notifications, the store's session log, metrics and server-to-client
asks. A session leaves when its connection goes away, or when `close()` is called.

A 2026-07-28 client has no session (each request is its own connection): it is never here.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mcp_types as mt
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from archon_gateway.core import sdk_compat

if TYPE_CHECKING:
    from archon_gateway.core.sdk_compat import Connection


@dataclass(eq=False)
class ClientSession:
    # Held weakly: the SDK owns the connection and drops it when the client goes.
    _peer: weakref.ref[Connection]
    session_id: str | None
    transport: str | None  # "stdio", "streamable-http", None (in memory)
    client_name: str = ""
    client_version: str = ""
    protocol: str = ""
    principal: str = "local"  # the auth decision's name for the caller; never a credential
    credential_kind: str | None = None
    remote: str = ""  # host:port of an HTTP client
    started_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    # A notification to it failed or stalled: later ones skip it.
    deaf: bool = False
    closed: bool = False

    @property
    def connection(self) -> Connection | None:
        return self._peer()

    @property
    def capabilities(self) -> mt.ClientCapabilities | None:
        connection = self._peer()
        return connection.client_capabilities if connection is not None else None

    def ready(self) -> Connection | None:
        """Its connection, once the handshake is complete (None before, or once gone)."""
        connection = self._peer()
        if connection is None or not connection.initialized.is_set():
            return None
        return connection


# Told of each session as it opens, and as it closes (closing may be told from any thread:
# a weakref finalizer runs wherever the garbage collection does).
Listener = Callable[[ClientSession], None]


class SessionRegistry(Middleware):
    def __init__(self) -> None:
        self._by_connection: weakref.WeakKeyDictionary[Connection, ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._by_id: dict[str, ClientSession] = {}
        self._stdio: ClientSession | None = None
        self._opened: list[Listener] = []
        self._closed: list[Listener] = []

    def on_open(self, listener: Listener) -> None:
        self._opened.append(listener)

    def on_close(self, listener: Listener) -> None:
        self._closed.append(listener)

    def __len__(self) -> int:
        return len(self._by_connection)

    def __iter__(self) -> Iterator[ClientSession]:
        return iter(list(self._by_connection.values()))

    def of(self, session: object) -> ClientSession | None:
        """The registered session behind a request's SDK session object."""
        connection = sdk_compat.session_connection(session)
        return self._by_connection.get(connection) if connection is not None else None

    def by_id(self, session_id: str) -> ClientSession | None:
        return self._by_id.get(session_id)

    @property
    def stdio(self) -> ClientSession | None:
        """The stdio client's session (one per process), once it initialized."""
        return self._stdio

    def close(self, session: ClientSession) -> None:
        """Forget a session (its connection ended, or it expired); listeners are told once."""
        connection = session.connection
        if connection is not None:
            self._by_connection.pop(connection, None)
        self._gone(session)

    def _gone(self, session: ClientSession) -> None:
        if session.closed:
            return
        session.closed = True
        if session.session_id is not None and self._by_id.get(session.session_id) is session:
            del self._by_id[session.session_id]
        if self._stdio is session:
            self._stdio = None
        for listener in self._closed:
            listener(session)

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        ctx = context.fastmcp_context
        connection = sdk_compat.session_connection(ctx.session) if ctx is not None else None
        if ctx is None or connection is None or connection in self._by_connection:
            return result
        session_id = None
        with suppress(RuntimeError):  # none: a sessionless request
            session_id = ctx.session_id
        session = _resolved(connection, session_id, ctx.transport, context.message.params)
        self._by_connection[connection] = session
        if session_id is not None:
            self._by_id[session_id] = session
        if session.transport == "stdio":
            self._stdio = session
        weakref.finalize(connection, self._gone, session)
        for listener in self._opened:
            listener(session)
        return result


def _resolved(
    connection: Connection, session_id: str | None, transport: str | None, params: Any
) -> ClientSession:
    client = getattr(params, "client_info", None)
    session = ClientSession(
        weakref.ref(connection),
        session_id,
        transport,
        client_name=str(getattr(client, "name", "")),
        client_version=str(getattr(client, "version", "")),
        protocol=str(getattr(params, "protocol_version", "")),
    )
    with suppress(RuntimeError):  # not over HTTP: a local caller
        request = get_http_request()
        session.principal = str(getattr(request.state, "principal", "anonymous"))
        session.credential_kind = getattr(request.state, "credential_kind", None)
        if request.client:
            session.remote = f"{request.client.host}:{request.client.port}"
    return session
