"""Wiring the catalog into a gateway (called by the composition root, gateway/app.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.middleware import Middleware as StarletteMiddleware

from archon_gateway.catalog.meta_tools import meta_tools
from archon_gateway.catalog.profiles import build_profiles
from archon_gateway.catalog.view import CatalogView, NamespaceOf
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.profile_paths import ProfilePathMiddleware
from archon_gateway.gateway.settings import Settings

log = logging.getLogger(__name__)

# archon_call_tool is not limited itself: the tool it calls gets its own limit inside.
CALL_TOOL_LIMIT = {"archon_call_tool": math.inf}


def add_catalog(
    server: GatewayServer, settings: Settings, namespace_of: NamespaceOf
) -> tuple[CatalogView, StarletteMiddleware]:
    """The profile view on every listing and lookup, and the ASGI layer serving
    `/mcp/{profile}` over HTTP (to sit behind the auth guard)."""
    profiles = build_profiles(settings.profiles, settings.catalog_mode)
    view = CatalogView(profiles, settings.default_profile, namespace_of, meta_tools)
    server.add_transform(view)
    paths = StarletteMiddleware(
        ProfilePathMiddleware,
        mcp_path=settings.http_path,
        profiles=view.profiles,  # the view's own dict: a reload updates it in place
        default=lambda: view.default,
    )
    return view, paths


def report_at_start(
    server: GatewayServer,
    view: CatalogView,
    upstream_names: Callable[[], Iterable[str]],
    settled: Callable[[], Any] | None,
) -> None:
    """Once the upstreams have settled (in the background: start-up does not wait), log
    one line per profile name or pattern that matches no tool. Lazily started upstreams
    are not started for this: their profiles are checked on the first listing instead."""

    @asynccontextmanager
    async def reporting() -> AsyncIterator[None]:
        async def report() -> None:
            native = [tool.name for tool in await server.local_provider.list_tools()]
            if settled is not None:
                await settled()
            view.report_unknown([*native, *upstream_names()])

        async with anyio.create_task_group() as group:
            group.start_soon(report)
            yield
            group.cancel_scope.cancel()

    server.add_lifetime(reporting)
