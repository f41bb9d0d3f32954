"""The shared HTTP client against a real (misbehaving on purpose) server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from archon_gateway.core.circuit_breaker import CircuitBreaker
from archon_gateway.core.errors import BackendTimeout, CircuitOpen, UpstreamUnavailable
from archon_gateway.core.http_client import (
    create_http_client,
    http_errors,
    raise_for_unavailable,
)

pytestmark = pytest.mark.anyio


async def _handle(stream: SocketStream) -> None:
    async with stream:
        reader = BufferedByteReceiveStream(stream)
        try:
            head = await reader.receive_until(b"\r\n\r\n", 65536)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        request_line, *header_lines = head.decode().split("\r\n")
        path = request_line.split()[1].split("?")[0]
        headers = dict(line.split(": ", 1) for line in header_lines)
        if path == "/hang":
            await anyio.sleep_forever()
        status, extra, body = {
            "/ok": ("200 OK", "", b"fine"),
            "/fail": ("503 Service Unavailable", "", b"busy"),
            "/bad": ("404 Not Found", "", b"no"),
            "/redirect": ("302 Found", "Location: /ok\r\n", b""),
        }.get(path, ("200 OK", "", json.dumps(headers).encode()))
        await stream.send(
            f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )


@asynccontextmanager
async def http_server() -> AsyncIterator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _handle)
        yield f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


async def test_client_sends_its_headers_ignores_env_proxies_and_does_not_follow_redirects(
    monkeypatch: pytest.MonkeyPatch, refused_port: int
) -> None:
    dead_proxy = f"http://127.0.0.1:{refused_port}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with anyio.fail_after(10):
        async with (
            http_server() as base,
            create_http_client(base, timeout=5, headers={"X-Caller": "gateway"}) as client,
        ):
            echoed = (await client.get("/echo")).json()
            assert echoed["X-Caller"] == "gateway"
            redirect = await client.get("/redirect")
            assert redirect.status_code == 302
            assert raise_for_unavailable(await client.get("/bad"), "backend").status_code == 404


async def test_server_errors_refused_connections_and_timeouts_open_the_breaker(
    refused_port: int,
) -> None:
    breaker = CircuitBreaker("coordinator", fail_max=3, reset_timeout=60)
    with anyio.fail_after(10):
        async with http_server() as base, create_http_client(base, timeout=0.2) as client:
            with pytest.raises(UpstreamUnavailable, match=r"^coordinator failed: HTTP 503"):
                async with breaker.guard(), http_errors("coordinator"):
                    raise_for_unavailable(await client.get("/fail"), "coordinator")
            with pytest.raises(BackendTimeout, match=r"^coordinator did not answer in time"):
                async with breaker.guard(), http_errors("coordinator"):
                    await client.get("/hang?token=secret")
            refused = f"http://127.0.0.1:{refused_port}/ok?token=secret"
            with pytest.raises(UpstreamUnavailable, match=r"^coordinator is unreachable") as exc:
                async with breaker.guard(), http_errors("coordinator"):
                    await client.get(refused)
            assert "secret" not in str(exc.value)
            assert breaker.current_state == "open"
            with pytest.raises(CircuitOpen, match="retry in 60 s"):
                async with breaker.guard(), http_errors("coordinator"):
                    await client.get("/ok")


def test_client_pool_limits_are_the_gateway_defaults() -> None:
    client = create_http_client()
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert (pool._max_connections, pool._max_keepalive_connections) == (100, 20)
    assert client.follow_redirects is False
