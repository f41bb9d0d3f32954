"""Connected client sessions, so a server-wide change (an upstream's tool list) reaches
every client as `notifications/tools/list_changed`."""

from __future__ import annotations

import logging
import weakref
from contextlib import suppress
from typing import Any

import anyio
import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

log = logging.getLogger(__name__)

# A client that does not take a notification within this time is skipped, not waited on.
_SEND_LIMIT = 1.0


class ClientSessions(Middleware):
    """Remembers each session at initialize; forgets it when it closes (weakly held) or a
    notification to it fails."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self._sessions)

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        if context.fastmcp_context is not None:
            with suppress(RuntimeError):  # no session to notify (a sessionless request)
                self._sessions.add(context.fastmcp_context.session)
        return result

    async def tools_changed(self) -> None:
        """Tell every connected client to list tools again."""
        for session in list(self._sessions):
            try:
                with anyio.fail_after(_SEND_LIMIT):
                    await session.send_notification(mt.ToolListChangedNotification())
            except Exception as exc:  # a closed or stuck client; the others still hear it
                log.debug("could not send tools/list_changed to a client: %r", exc)
                self._sessions.discard(session)
