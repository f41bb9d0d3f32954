"""Telling connected clients what changed: the tool, resource or prompt lists (an upstream's
catalog), a resource they follow, or an upstream's log line meant for everyone.

Two protocol eras, two routes: a handshake-era session (what desktop clients speak today)
gets `notifications/tools/list_changed` on its session; a 2026-07-28 client has no standing
channel and hears changes on a `subscriptions/listen` stream, which the gateway serves."""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
from fastmcp import FastMCP

from archon_gateway.core import sdk_compat
from archon_gateway.gateway.session_registry import ClientSession, SessionRegistry

log = logging.getLogger(__name__)

# A client that does not take a notification within this time is skipped, not waited on.
_SEND_LIMIT = 1.0


class ClientSessions:
    """Tells the handshake-era sessions of the registry (skipping those a notification to
    failed); `serve_listen` adds the modern route."""

    def __init__(self, registry: SessionRegistry) -> None:
        self._registry = registry
        self._bus = sdk_compat.new_subscription_bus()

    def serve_listen(
        self, server: FastMCP[Any], around: sdk_compat.ListenHook | None = None
    ) -> None:
        """Serve `subscriptions/listen`, so 2026-07-28 clients can hear list changes (and
        the server advertises listChanged to them); `around` wraps each open stream."""
        sdk_compat.serve_subscriptions_listen(server, self._bus, around)

    def __len__(self) -> int:
        return sum(1 for _ in self._listening())

    def _listening(self) -> list[tuple[ClientSession, Any]]:
        found = []
        for session in self._registry:
            connection = session.connection
            if connection is not None and not session.deaf:
                found.append((session, connection))
        return found

    async def tools_changed(self) -> None:
        """Tell every connected client to list tools again."""
        await sdk_compat.publish_tools_changed(self._bus)
        told = 0
        for session, connection in self._listening():
            try:
                with anyio.fail_after(_SEND_LIMIT):
                    await connection.send_tool_list_changed()
                told += 1
            except Exception as exc:  # a closed or stuck client; the others still hear it
                log.debug("could not send tools/list_changed to a client: %r", exc)
                session.deaf = True
        log.debug("tools changed: told %d client session(s) and the listen streams", told)

    async def list_changed(self, kind: Literal["resources", "prompts"]) -> None:
        """Tell every connected client to list resources (or prompts) again."""
        await sdk_compat.publish_list_changed(self._bus, kind)
        await self._to_each(f"notifications/{kind}/list_changed", None)

    async def resource_updated(self, uri: str, followers: list[object]) -> None:
        """Tell the clients that follow `uri` (and only them) that it changed."""
        await sdk_compat.publish_resource_updated(self._bus, uri)  # listen streams filter
        for session, connection in self._listening():
            if any(follower is connection for follower in followers):
                params = {"uri": uri}
                await self._send(session, connection, "notifications/resources/updated", params)

    async def log_to_all(self, upstream: str, params: dict[str, Any]) -> None:
        """An upstream's log line that belongs to no call: to every handshake-era client
        (2026-07-28 clients take log lines only on their own requests' streams)."""
        logger = params.get("logger")
        named = f"{upstream}.{logger}" if isinstance(logger, str) and logger else upstream
        await self._to_each("notifications/message", {**params, "logger": named})

    async def _to_each(self, method: str, params: dict[str, Any] | None) -> None:
        for session, connection in self._listening():
            await self._send(session, connection, method, params)

    async def _send(
        self, session: ClientSession, connection: Any, method: str, params: dict[str, Any] | None
    ) -> None:
        try:
            with anyio.fail_after(_SEND_LIMIT):
                await connection.notify(method, params)
        except Exception as exc:  # a closed or stuck client; the others still hear it
            log.debug("could not send %s to a client: %r", method, exc)
            session.deaf = True
