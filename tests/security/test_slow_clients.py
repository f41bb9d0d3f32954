"""Slow HTTP clients cannot hold connections: idle and half-sent connections are closed at
their read deadlines, and the gateway goes on serving (real sockets on 127.0.0.1)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from tests.support import running_http_gateway, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def test_idle_and_half_sent_connections_are_closed_and_serving_goes_on(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    gateway_env |= {
        "ARCHON_HTTP_HEADER_TIMEOUT": "1",
        "ARCHON_HTTP_BODY_TIMEOUT": "1",
        "ARCHON_HTTP_KEEPALIVE_TIMEOUT": "1",
    }
    async with running_http_gateway(gateway_env, tmp_path) as (process, url, _stderr):
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        fds_before = open_fds(process.pid)
        sockets: list[socket.socket] = []
        try:
            for index in range(60):
                sock = socket.create_connection(address)
                if index % 3 == 1:  # headers half sent
                    sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Le")
                elif index % 3 == 2:  # headers sent, body stalls
                    sock.sendall(
                        b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b'Content-Length: 100\r\n\r\n{"jsonrpc"'
                    )
                sockets.append(sock)  # index % 3 == 0: idle, never sends
            started = time.monotonic()
            with anyio.fail_after(30):
                await wait_until(lambda: all(closed_by_peer(s) for s in sockets), within=20)
            assert time.monotonic() - started < 10
            async with httpx.AsyncClient(timeout=10) as web:
                assert (await web.get(url.removesuffix("/mcp") + "/health")).status_code == 200
            await wait_until(lambda: open_fds(process.pid) <= fds_before + 2, within=10)
        finally:
            for sock in sockets:
                sock.close()
