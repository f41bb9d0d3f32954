"""The HTTP front door holds idle connections without refusing real requests, and bounds
handshake-era sessions in time and number (real uvicorn on 127.0.0.1, in process)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.serve_loop import HttpLimits
from archon_gateway.gateway.settings import Settings
from tests.support import INITIALIZE, served_over_http, wait_until

pytestmark = pytest.mark.anyio

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
VERSION = {"mcp-protocol-version": INITIALIZE["protocolVersion"]}


@asynccontextmanager
async def serving(
    tmp_path: Path, limits: HttpLimits, server: GatewayServer | None = None
) -> AsyncIterator[str]:
    """The gateway on a free port with `limits`; yields its base URL."""
    server = server or build_gateway(Settings(transport="http", data_dir=tmp_path))
    async with served_over_http(server, limits) as base:
        yield base


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def idle_sockets(base: str, count: int) -> list[socket.socket]:
    host, port = base.removeprefix("http://").split(":")
    return [socket.create_connection((host, int(port))) for _ in range(count)]


def stalled_post(base: str) -> socket.socket:
    """A connection whose request headers are complete and whose body never finishes."""
    (sock,) = idle_sockets(base, 1)
    host = base.removeprefix("http://").encode()  # an allowed Host (DNS-rebinding guard)
    sock.sendall(
        b"POST /mcp HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"jsonrpc"'
    )
    return sock


async def initialize(web: httpx.AsyncClient, base: str) -> str:
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
    reply = await web.post(base + "/mcp", json=message, headers=HEADERS)
    assert reply.status_code == 200, reply.text
    session = reply.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    sent = await web.post(base + "/mcp", json=done, headers=session_headers(session))
    assert sent.status_code == 202, sent.text
    return session


def session_headers(session: str) -> dict[str, str]:
    return HEADERS | VERSION | {"mcp-session-id": session}


async def ping(web: httpx.AsyncClient, base: str, session: str) -> int:
    message = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    reply = await web.post(base + "/mcp", json=message, headers=session_headers(session))
    return reply.status_code


async def open_http_sessions(web: httpx.AsyncClient, base: str) -> float:
    text = (await web.get(base + "/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "archon_active_sessions" and sample.labels["transport"] == "http":
                return sample.value
    raise AssertionError("no archon_active_sessions{transport=http} sample")


# --- connections ---------------------------------------------------------------------------


async def test_six_hundred_idle_connections_leave_health_and_mcp_requests_answered(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(60):
        async with serving(tmp_path, HttpLimits()) as base:
            sockets = idle_sockets(base, 600)
            try:
                async with httpx.AsyncClient(timeout=10) as web:
                    assert (await web.get(base + "/health")).status_code == 200
                    session = await initialize(web, base)
                    assert await ping(web, base, session) == 200
            finally:
                for sock in sockets:
                    sock.close()


async def test_at_the_connection_cap_the_longest_waiting_connection_gives_way(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(60):
        async with serving(tmp_path, HttpLimits(max_connections=8)) as base:
            sockets = idle_sockets(base, 8)
            try:
                async with httpx.AsyncClient(timeout=10) as web:
                    assert (await web.get(base + "/health")).status_code == 200
                await wait_until(lambda: closed_by_peer(sockets[0]), within=10)
                assert not any(closed_by_peer(s) for s in sockets[-3:])
            finally:
                for sock in sockets:
                    sock.close()


async def test_a_full_mcp_request_cap_never_refuses_health(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with serving(tmp_path, HttpLimits(max_requests=2)) as base:
            busy = [stalled_post(base), stalled_post(base)]
            try:
                async with httpx.AsyncClient(timeout=10) as web:

                    async def refused() -> bool:
                        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize"}
                        reply = await web.post(base + "/mcp", json=message, headers=HEADERS)
                        return reply.status_code == 503

                    await wait_until(refused, within=10)  # the stalled two are in the app
                    reply = await web.post(
                        base + "/mcp",
                        json={"jsonrpc": "2.0", "id": 1, "method": "initialize"},
                        headers=HEADERS,
                    )
                    assert reply.json()["error"]["message"] == (
                        "too many MCP requests in flight: 2 (http_max_requests); retry shortly"
                    )
                    assert (await web.get(base + "/health")).status_code == 200
                    assert (await web.get(base + "/metrics")).status_code == 200
            finally:
                for sock in busy:
                    sock.close()


# --- sessions ------------------------------------------------------------------------------


async def test_an_idle_session_is_closed_and_its_next_request_gets_404(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with (
            serving(tmp_path, HttpLimits(session_idle_s=0.5)) as base,
            httpx.AsyncClient(timeout=10) as web,
        ):
            session = await initialize(web, base)
            assert await open_http_sessions(web, base) == 1

            async def none_open() -> bool:
                return await open_http_sessions(web, base) == 0

            await wait_until(none_open, within=20)
            assert await ping(web, base, session) == 404
            assert await ping(web, base, await initialize(web, base)) == 200


async def test_at_the_session_cap_the_least_recently_used_idle_session_is_closed(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(60):
        async with (
            serving(tmp_path, HttpLimits(max_sessions=2)) as base,
            httpx.AsyncClient(timeout=10) as web,
        ):
            first = await initialize(web, base)
            second = await initialize(web, base)
            assert await ping(web, base, first) == 200  # now `second` is least recent
            third = await initialize(web, base)
            assert await ping(web, base, second) == 404
            assert await ping(web, base, first) == 200
            assert await ping(web, base, third) == 200
            assert await open_http_sessions(web, base) == 2


def add_wait_forever_tool(server: GatewayServer) -> anyio.Event:
    call_started = anyio.Event()

    @server.tool
    async def wait_forever() -> str:
        call_started.set()
        await anyio.sleep_forever()
        return "unreachable"

    return call_started


async def test_at_the_session_cap_with_every_session_busy_initialize_gets_503(
    tmp_path: Path,
) -> None:
    server = build_gateway(Settings(transport="http", data_dir=tmp_path))
    call_started = add_wait_forever_tool(server)
    with anyio.fail_after(60):
        async with (
            serving(tmp_path, HttpLimits(max_sessions=1), server) as base,
            httpx.AsyncClient(timeout=30) as web,
            anyio.create_task_group() as tg,
        ):
            session = await initialize(web, base)

            async def call() -> None:
                message: dict[str, Any] = {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "wait_forever", "arguments": {}},
                }
                await web.post(base + "/mcp", json=message, headers=session_headers(session))

            tg.start_soon(call)
            await call_started.wait()
            message = {"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": INITIALIZE}
            reply = await web.post(base + "/mcp", json=message, headers=HEADERS)
            assert reply.status_code == 503
            assert reply.json()["id"] == 9
            assert reply.json()["error"]["message"] == (
                "too many open sessions: all 1 (http_max_sessions) have a request in flight; "
                "retry shortly"
            )
            assert await open_http_sessions(web, base) == 1
            tg.cancel_scope.cancel()


async def test_when_every_connection_has_a_request_in_flight_a_new_one_gets_503(
    tmp_path: Path,
) -> None:
    server = build_gateway(Settings(transport="http", data_dir=tmp_path))
    calls_started: list[str] = []
    both_started = anyio.Event()

    @server.tool
    async def wait_forever() -> str:
        calls_started.append("started")
        if len(calls_started) == 2:
            both_started.set()
        await anyio.sleep_forever()
        return "unreachable"

    with anyio.fail_after(60):
        async with (
            serving(tmp_path, HttpLimits(max_connections=2), server) as base,
            httpx.AsyncClient(timeout=30) as web,
            anyio.create_task_group() as tg,
        ):
            session = await initialize(web, base)

            async def call(request_id: int) -> None:
                message: dict[str, Any] = {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "tools/call",
                    "params": {"name": "wait_forever", "arguments": {}},
                }
                await web.post(base + "/mcp", json=message, headers=session_headers(session))

            tg.start_soon(call, 3)
            tg.start_soon(call, 4)
            await both_started.wait()  # both connections have a request in flight
            host, port = base.removeprefix("http://").split(":")
            async with await anyio.connect_tcp(host, int(port)) as late:
                answer = await late.receive()
            assert answer.startswith(b"HTTP/1.1 503")
            assert answer.endswith(
                b"too many open connections: all 2 (http_max_connections) are serving "
                b"requests; retry shortly"
            )
            tg.cancel_scope.cancel()
