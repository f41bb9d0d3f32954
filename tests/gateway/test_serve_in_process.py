"""`serve()` embedded in a host process: stopping never waits on calls that are in flight."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from fastmcp import FastMCP
from mcp import Client

from archon_gateway.core.errors import GatewayError
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.serve_loop import bind_listener, http_url, serve
from archon_gateway.gateway.settings import Settings
from tests.support import INITIALIZE

pytestmark = pytest.mark.anyio


def add_wait_forever_tool(server: FastMCP) -> anyio.Event:
    """A tool that never finishes by itself; the event is set once a call is running."""
    call_started = anyio.Event()

    @server.tool
    async def wait_forever() -> str:
        call_started.set()
        await anyio.sleep_forever()
        return "unreachable"

    return call_started


async def test_stop_ends_a_call_in_flight_with_a_clear_error_and_serve_returns(
    tmp_path: Path,
) -> None:
    server = build_gateway(Settings(transport="http", data_dir=tmp_path))
    call_started = add_wait_forever_tool(server)

    listener = bind_listener("127.0.0.1", 0)
    url = http_url(listener, "/mcp")
    stop = anyio.Event()
    replies: list[str] = []

    async def call_that_never_returns() -> None:
        async with Client(url) as client:
            result = await client.call_tool("wait_forever", {})
            assert result.is_error
            replies.append(result.content[0].text)  # type: ignore[union-attr]

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: serve(
                    server,
                    stdio=False,
                    listener=listener,
                    shutdown_grace=0.2,
                    handle_signals=False,
                    stop=stop,
                )
            )
            tg.start_soon(call_that_never_returns)
            await call_started.wait()
            stop.set()
    assert replies == ["wait_forever was stopped: the gateway is shutting down"]


async def test_serving_nothing_is_refused(tmp_path: Path) -> None:
    server = build_gateway(Settings(transport="http", data_dir=tmp_path))
    with pytest.raises(GatewayError, match="nothing to serve"):
        await serve(server, stdio=False, listener=None)


async def test_stop_answers_a_stdio_call_in_flight_before_the_process_would_exit(
    tmp_path: Path,
) -> None:
    server = build_gateway(Settings(data_dir=tmp_path))
    call_started = add_wait_forever_tool(server)

    client_to_gateway_r, client_to_gateway_w = os.pipe()
    gateway_to_client_r, gateway_to_client_w = os.pipe()
    stop = anyio.Event()
    to_gateway = anyio.wrap_file(os.fdopen(client_to_gateway_w, "wb", buffering=0))
    from_gateway = anyio.wrap_file(os.fdopen(gateway_to_client_r, "rb"))

    async def send(message: dict[str, object]) -> None:
        await to_gateway.write(json.dumps(message).encode() + b"\n")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: serve(
                    server,
                    stdio=True,
                    listener=None,
                    handle_signals=False,
                    stop=stop,
                    stdio_fds=(client_to_gateway_r, gateway_to_client_w),
                )
            )
            await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
            assert json.loads(await from_gateway.readline())["id"] == 1
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await send(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "wait_forever", "arguments": {}},
                }
            )
            await call_started.wait()
            stop.set()
            reply = json.loads(await from_gateway.readline())
    assert reply["id"] == 2
    assert reply["result"]["isError"] is True
    assert reply["result"]["content"][0]["text"] == (
        "wait_forever was stopped: the gateway is shutting down"
    )
    for fd in (client_to_gateway_r, gateway_to_client_w):
        os.close(fd)
    await to_gateway.aclose()
    await from_gateway.aclose()


async def test_after_serve_stops_an_app_in_the_same_process_still_streams_its_answers(
    tmp_path: Path,
) -> None:
    """Stopping serve() ends open SSE streams through a process-global flag; an embedded
    serve must leave it as it found it, or every later SSE answer here comes back empty."""
    import httpx

    from archon_gateway.gateway.http import build_http_app
    from archon_gateway.gateway.serve_loop import HttpLimits
    from tests.gateway.test_listener_bounds import serving

    with anyio.fail_after(60):
        async with serving(tmp_path / "first", HttpLimits()):
            pass  # served over real HTTP, then stopped

        later = build_http_app(
            build_gateway(Settings(transport="http", data_dir=tmp_path / "later")), "/mcp"
        )
        headers = {"accept": "application/json, text/event-stream"}
        call = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
        async with later.router.lifespan_context(later):
            transport = httpx.ASGITransport(later)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as web:
                answer = await web.post("/mcp", json=call, headers=headers)
    assert answer.status_code == 200
    assert '"serverInfo"' in answer.text
