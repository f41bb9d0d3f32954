"""A handshake-era HTTP session the gateway closes releases what the gateway held for it:
its resource subscription (forwarded to server-everything, npm) no longer keeps the
client's connection alive (real uvicorn on 127.0.0.1, in process)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as mt
import pytest
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from archon_gateway.core import sdk_compat
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.serve_loop import HttpLimits
from archon_gateway.gateway.settings import Settings
from tests.gateway.test_listener_bounds import initialize, ping, serving, session_headers
from tests.support import wait_until
from tests.upstreams.test_passthrough import STATIC_URI

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


class RememberConnections(Middleware):
    """Weak references to each session's connection, taken at initialize."""

    def __init__(self) -> None:
        self.held: list[weakref.ref[Any]] = []

    async def on_initialize(
        self,
        context: MiddlewareContext[mt.InitializeRequest],
        call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
    ) -> mt.InitializeResult | None:
        result = await call_next(context)
        assert context.fastmcp_context is not None
        connection = sdk_compat.session_connection(context.fastmcp_context.session)
        self.held.append(weakref.ref(connection))
        return result


async def test_a_session_closed_at_the_cap_no_longer_holds_its_subscription(
    everything: None, manifests_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(transport="http", data_dir=tmp_path / "data", manifests_dir=manifests_dir)
    server = build_gateway(settings)
    remember = RememberConnections()
    server.add_middleware(remember)
    with anyio.fail_after(90):
        async with (
            serving(tmp_path, HttpLimits(max_sessions=1), server) as base,
            httpx.AsyncClient(timeout=30) as web,
        ):
            first = await initialize(web, base)

            async def subscribed() -> bool:
                message = {
                    "jsonrpc": "2.0",
                    "id": 5,
                    "method": "resources/subscribe",
                    "params": {"uri": STATIC_URI},
                }
                reply = await web.post(base + "/mcp", json=message, headers=session_headers(first))
                return "error" not in reply.text  # until the upstream has listed its resources

            await wait_until(subscribed, within=60)
            await initialize(web, base)  # the cap is 1: the idle first session is closed
            assert await ping(web, base, first) == 404

            def first_connection_released() -> bool:
                gc.collect()
                return remember.held[0]() is None

            # The closed session's server task ends on its own schedule (the SDK's), and
            # only then lets go of the connection: under a full suite's load that has taken
            # longer than 10 s, so the poll waits up to 30.
            await wait_until(first_connection_released, within=30)
