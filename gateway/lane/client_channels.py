"""The client of a lane call, as the upstream's caller (see upstreams/callers.py): where
progress and log lines go, and whether (and how) an upstream's question reaches it.

- A handshake-era client is asked over its SDK connection (the SDK matches the answer),
  and hears progress and log lines there.
- A 2026-07-28 client the lane serves declared nothing an upstream could ask, so questions
  are refused as on the normal path (roots come from the manifest); progress, and log lines
  at or above the level its request opted into, go out on the request's own reply stream.
  An HTTP call of the handshake era that declared nothing to be asked is served the same
  way (every log level: that era's rule).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import mcp_types as mt
from mcp.shared.exceptions import MCPError

from archon_gateway.core import sdk_compat
from archon_gateway.core.errors import PeerRequestRefused
from archon_gateway.upstreams.client_requests import checked_answer, log_fields, why_not

if TYPE_CHECKING:
    from archon_gateway.core.sdk_compat import Connection

# Sends one JSON-RPC notification (method, params) to the caller.
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


def progress_params(
    token: str | int, progress: float, total: float | None, message: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"progressToken": token, "progress": progress}
    if total is not None:
        params["total"] = total
    if message is not None:
        params["message"] = message
    return params


def log_params(upstream: str, params: dict[str, Any]) -> tuple[mt.LoggingLevel, dict[str, Any]]:
    level, data, logger = log_fields(upstream, params)
    return level, {"level": level, "logger": logger, "data": data}


class SessionCaller:
    """A handshake-era client, over its SDK connection."""

    def __init__(self, connection: Connection, progress_token: str | int | None) -> None:
        self.client: object = connection
        self._peer = connection
        self._token = progress_token

    def can(self, method: str, params: dict[str, Any]) -> str | None:
        return why_not(self._peer.client_capabilities, method, params)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._peer.outbound.send_raw_request(method, params)
        except MCPError as exc:
            raise PeerRequestRefused(
                exc.code, f"the client refused {method}: {exc.message}"
            ) from exc
        return checked_answer(method, answer)

    async def log(self, upstream: str, params: dict[str, Any]) -> None:
        _, fields = log_params(upstream, params)
        await self._peer.outbound.notify("notifications/message", fields)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        if self._token is not None:
            params = progress_params(self._token, progress, total, message)
            await self._peer.outbound.notify("notifications/progress", params)


class StreamCaller:
    """A client that declared nothing to be asked: notifications ride its request's reply
    stream (`notify`), log lines at the levels its request opted into."""

    def __init__(
        self, notify: Notify, version: str, meta: dict[str, Any], progress_token: str | int | None
    ) -> None:
        self.client: object = self
        self._notify = notify
        self._token = progress_token
        self._levels = sdk_compat.allowed_log_levels(version, meta)

    def can(self, method: str, params: dict[str, Any]) -> str | None:
        # It declared none of what may be asked: the normal path's one-line reason.
        return why_not(None, method, params)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise PeerRequestRefused(-32600, f"{method} refused: {why_not(None, method, params)}")

    async def log(self, upstream: str, params: dict[str, Any]) -> None:
        level, fields = log_params(upstream, params)
        if level in self._levels:
            await self._notify("notifications/message", fields)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        if self._token is not None:
            params = progress_params(self._token, progress, total, message)
            await self._notify("notifications/progress", params)
