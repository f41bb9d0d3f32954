"""One `service_sessions` row per client session: written at initialize, its call and
error counts brought up to date every few seconds, ended when the session's connection
goes away (or the gateway stops). Never a credential: the principal is the auth decision's
name for the caller ("service", "user:<sub>", "anonymous", "local" on stdio).

Handshake-era sessions only: a 2026-07-28 client has no session to log (each request is
its own connection); its calls still appear in metrics and, on HTTP, in the audit trail.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as mt
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from archon_gateway.gateway.core import sdk_compat
from archon_gateway.store.service import Store

TABLE = "service_sessions"


@dataclass
class _Counts:
    calls: int = 0
    errors: int = 0
    dirty: bool = False


class SessionLog(Middleware):
    def __init__(self, store: Store, *, interval: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self._open: dict[str, _Counts] = {}
        # Filled by weakref finalizers, which may run in any thread (whichever triggers the
        # garbage collection): drained on the event loop by `_refresh`.
        self._gone: list[str] = []

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        ctx = context.fastmcp_context
        if ctx is None:
            return result
        with contextlib.suppress(RuntimeError):
            key = ctx.session_id
            if key not in self._open:
                self._started(key, ctx.transport or "memory", context.message.params, ctx)
        return result

    def _started(self, key: str, transport: str, params: Any, ctx: Any) -> None:
        principal, remote = "local", ""
        with contextlib.suppress(RuntimeError):
            request = get_http_request()
            principal = str(getattr(request.state, "principal", "anonymous"))
            remote = f"{request.client.host}:{request.client.port}" if request.client else ""
        client = getattr(params, "client_info", None)
        self._open[key] = _Counts()
        self.store.append(
            TABLE,
            {
                "session_key": key[:100],
                "transport": transport[:16],
                "client_name": str(getattr(client, "name", ""))[:200],
                "client_version": str(getattr(client, "version", ""))[:100],
                "protocol": str(getattr(params, "protocol_version", ""))[:32],
                "principal": principal[:200],
                "remote": remote[:100],
                "started_at": time.time(),
                "ended_at": None,
                "calls": 0,
                "errors": 0,
            },
        )
        connection = sdk_compat.session_connection(ctx.session)
        if connection is not None:
            weakref.finalize(connection, self._gone.append, key)

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        counts: _Counts | None = None
        if context.fastmcp_context is not None:
            with contextlib.suppress(RuntimeError):
                counts = self._open.get(context.fastmcp_context.session_id)
        if counts is None:
            return await call_next(context)
        counts.calls += 1
        counts.dirty = True
        try:
            result = await call_next(context)
        except BaseException:
            counts.errors += 1
            raise
        if getattr(result, "is_error", False):
            counts.errors += 1
        return result

    def _ended(self, key: str) -> None:
        counts = self._open.pop(key, None)
        if counts is not None:
            self._write(key, counts, ended=True)

    def _write(self, key: str, counts: _Counts, *, ended: bool = False) -> None:
        values: dict[str, Any] = {"calls": counts.calls, "errors": counts.errors}
        if ended:
            values["ended_at"] = time.time()
        counts.dirty = False
        self.store.update(TABLE, "session_key", key[:100], values)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Bring counts up to date every `interval` seconds; end every session on exit."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._refresh)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                for key in list(self._open):
                    self._ended(key)

    async def _refresh(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            while self._gone:
                self._ended(self._gone.pop())
            for key, counts in list(self._open.items()):
                if counts.dirty:
                    self._write(key, counts)
