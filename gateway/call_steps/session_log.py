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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from archon_gateway.gateway.call_context import CallContext, Next
from archon_gateway.gateway.session_registry import ClientSession, SessionRegistry
from archon_gateway.store.service import Store

TABLE = "service_sessions"


@dataclass
class _Counts:
    calls: int = 0
    errors: int = 0
    dirty: bool = False


class SessionLog:
    """Listens to the session registry (rows) and is a step of the call pipeline (counts)."""

    def __init__(self, store: Store, registry: SessionRegistry, *, interval: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self._open: dict[str, _Counts] = {}
        # Filled when a session closes, which may be told in any thread (whichever triggers
        # the garbage collection): drained on the event loop by `_refresh`.
        self._gone: list[str] = []
        registry.on_open(self._started)
        registry.on_close(self._closed)

    def _started(self, session: ClientSession) -> None:
        key = session.session_id
        if key is None or key in self._open:
            return
        self._open[key] = _Counts()
        self.store.append(
            TABLE,
            {
                "session_key": key[:100],
                "transport": (session.transport or "memory")[:16],
                "client_name": session.client_name[:200],
                "client_version": session.client_version[:100],
                "protocol": session.protocol[:32],
                "principal": session.principal[:200],
                "remote": session.remote[:100],
                "started_at": session.started_at,
                "ended_at": None,
                "calls": 0,
                "errors": 0,
            },
        )

    def _closed(self, session: ClientSession) -> None:
        if session.session_id is not None:
            self._gone.append(session.session_id)

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        counts = self._open.get(call.session_id) if call.session_id is not None else None
        if counts is None:
            return await call_next(call)
        counts.calls += 1
        counts.dirty = True
        try:
            result = await call_next(call)
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
