"""The front door's half of MCP passthrough: what upstreams tell the gateway's clients
(resource updates to their subscribers only, log lines to the client whose call they belong
to, resource and prompt list changes to everyone), resource subscriptions in both protocol
eras, and `logging/setLevel` forwarded upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp.shared.exceptions import MCPError

from archon_gateway.core import sdk_compat
from archon_gateway.core.errors import GatewayError
from archon_gateway.gateway.client_sessions import ClientSessions
from archon_gateway.upstreams.catalog import PROMPTS_CHANGED, RESOURCES_CHANGED
from archon_gateway.upstreams.naming import namespaced_uri
from archon_gateway.upstreams.pool import UpstreamPool

log = logging.getLogger(__name__)

# Subscribing upstream, or forwarding a log level, may take this long before it is given up.
_UPSTREAM_LIMIT = 10.0
INVALID_PARAMS = -32602
_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class ResourceSubscriptions:
    """Which clients (handshake-era connections, or 2026-07-28 listen streams) follow which
    resource URIs. The owning upstream is subscribed while at least one client is."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._followers: dict[str, list[object]] = {}
        # Clients whose end already releases what they follow (ids: held weakly elsewhere).
        self._released_at_close: set[int] = set()

    def followers(self, uri: str) -> list[object]:
        return list(self._followers.get(uri, ()))

    async def subscribe(self, uri: str, client: object) -> None:
        owner = self._pool.owner_of_uri(uri)
        if owner is None:
            raise MCPError(INVALID_PARAMS, f"no upstream serves the resource {uri}")
        followers = self._followers.setdefault(uri, [])
        if any(f is client for f in followers):
            return
        followers.append(client)
        self._release_when_closed(client)
        if len(followers) == 1:
            try:
                with anyio.fail_after(_UPSTREAM_LIMIT):
                    await owner[0].request("resources/subscribe", {"uri": owner[1]})
            except (GatewayError, TimeoutError) as exc:
                followers.remove(client)
                raise MCPError(-32603, f"subscribing to {uri} failed: {exc}") from exc

    async def unsubscribe(self, uri: str, client: object) -> None:
        followers = self._followers.get(uri, [])
        kept = [f for f in followers if f is not client]
        if kept:
            self._followers[uri] = kept
            return
        self._followers.pop(uri, None)
        owner = self._pool.owner_of_uri(uri)
        session = owner[0].live_session() if owner else None
        if owner is not None and session is not None and followers:
            with anyio.move_on_after(_UPSTREAM_LIMIT), anyio.CancelScope(shield=True):
                try:
                    await session.request("resources/unsubscribe", {"uri": owner[1]})
                except GatewayError as exc:
                    log.debug("unsubscribing %s upstream failed: %s", uri, exc)

    def _release_when_closed(self, client: object) -> None:
        """A handshake-era session that ends (its client's DELETE, idle expiry, eviction at
        the session cap) stops following its URIs, so upstreams are unsubscribed when it
        was the last follower and the connection is not kept alive here."""
        key = id(client)
        if key in self._released_at_close:
            return

        async def release() -> None:
            self._released_at_close.discard(key)
            await self.forget(client)

        if sdk_compat.when_connection_closes(client, release):
            self._released_at_close.add(key)

    async def forget(self, client: object) -> None:
        """Stop `client` following anything."""
        for uri in [u for u, fs in self._followers.items() if any(f is client for f in fs)]:
            await self.unsubscribe(uri, client)

    @asynccontextmanager
    async def listening(self, uris: list[str], stream: object) -> AsyncIterator[None]:
        """For a 2026-07-28 listen stream: its URIs are followed while it is open."""
        followed = []
        try:
            for uri in uris:
                try:
                    await self.subscribe(uri, stream)
                    followed.append(uri)
                except MCPError as exc:
                    log.info("listen stream: %s", exc.message)
            yield
        finally:
            for uri in followed:
                await self.unsubscribe(uri, stream)


class Relays:
    """Delivers what the pool relays from upstreams to the right clients."""

    def __init__(self, sessions: ClientSessions, subscriptions: ResourceSubscriptions) -> None:
        self._sessions = sessions
        self._subscriptions = subscriptions

    async def __call__(self, upstream: str, method: str, params: dict[str, Any]) -> None:
        if method == RESOURCES_CHANGED:
            await self._sessions.list_changed("resources")
        elif method == PROMPTS_CHANGED:
            await self._sessions.list_changed("prompts")
        elif method == "notifications/resources/updated":
            uri = params.get("uri")
            if isinstance(uri, str):
                await self._resource_updated(namespaced_uri(upstream, uri))
        elif method == "notifications/message":
            # A call's own log lines go to its client from the call (callers.py); these
            # belong to no single client's call.
            await self._sessions.log_to_all(upstream, params)

    async def _resource_updated(self, uri: str) -> None:
        await self._sessions.resource_updated(uri, self._subscriptions.followers(uri))


class LogLevelForwarding(Middleware):
    """`logging/setLevel` from a handshake-era client also sets the level of every upstream
    that logs, running or started later (one shared session each: the last level set wins)."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        result = await call_next(context)
        if context.method == "logging/setLevel":
            # FastMCP hands this pass the raw params (a mapping), not a typed request.
            message = context.message
            level = message.get("level") if isinstance(message, Mapping) else None
            if level in _LEVELS:
                await self._forward(level)
        return result

    async def _forward(self, level: str) -> None:
        for upstream in list(self._pool.upstreams.values()):  # a reload may change the set
            upstream.log_level = level  # for its next start, too
            session = upstream.live_session()
            if session is None or not session.offers("logging"):
                continue
            with anyio.move_on_after(_UPSTREAM_LIMIT):
                try:
                    await session.request("logging/setLevel", {"level": level})
                except GatewayError as exc:
                    log.info("upstream %s refused log level %s: %s", upstream.name, level, exc)


def serve_passthrough(server: Any, pool: UpstreamPool, sessions: ClientSessions) -> None:
    """Wire subscriptions, relays and log levels for the pool's upstreams into `server`."""
    subscriptions = ResourceSubscriptions(pool)
    sessions.serve_listen(server, around=subscriptions.listening)
    sdk_compat.serve_resource_subscriptions(
        server, subscriptions.subscribe, subscriptions.unsubscribe
    )
    pool.on_relay(Relays(sessions, subscriptions))
    server.add_middleware(LogLevelForwarding(pool))
