"""Profile selection over HTTP: `/mcp/{profile}` serves that profile, `/mcp` the default one.

A pure ASGI layer behind the auth guard: it rewrites `/mcp/{profile}` to the MCP endpoint
and records the profile in the request state, where `view.CatalogView` reads it. A
principal bound to a profile (a profile's service token, a JWT claim) gets its own profile
on `/mcp` and 403 on any other profile's path: the path can narrow nothing and widen
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from archon_gateway.catalog.view import PROFILE_STATE
from archon_gateway.gateway.asgi_replies import send_json
from archon_gateway.gateway.auth.http_guard import BOUND_PROFILE, ASGIApp, Receive, Scope, Send


class ProfilePathMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        mcp_path: str,
        profiles: Collection[str],
        default: Callable[[], str],
    ) -> None:
        """`profiles` and `default` are read on every request: a reload may change them."""
        self.app = app
        self.mcp_path = mcp_path.rstrip("/") or "/"
        self.prefix = self.mcp_path.rstrip("/") + "/"
        self.profiles = profiles
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        requested: str | None = None
        if path.startswith(self.prefix) and path.rstrip("/") != self.mcp_path:
            requested = path[len(self.prefix) :].rstrip("/")
            if "/" in requested:
                await self.app(scope, receive, send)  # not ours: the usual 404
                return
            if requested not in self.profiles:
                known = ", ".join(sorted(self.profiles))
                await _answer(send, 404, f"no profile named '{requested}' (profiles: {known})")
                return
            scope = dict(scope, path=self.mcp_path, raw_path=self.mcp_path.encode())
        elif path.rstrip("/") != self.mcp_path:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        bound = state.get(BOUND_PROFILE)
        if bound is not None and requested not in (None, bound):
            await _answer(
                send,
                403,
                f"this credential is bound to profile '{bound}' and cannot use "
                f"{self.prefix}{requested}",
            )
            return
        if bound is not None and bound not in self.profiles:
            await _answer(send, 403, f"this credential is bound to an unknown profile '{bound}'")
            return
        state[PROFILE_STATE] = requested or bound or self.default()
        await self.app(scope, receive, send)


async def _answer(send: Send, status: int, error: str) -> None:
    await send_json(send, status, {"error": error})
