"""The streamable HTTP front door, served beside stdio from one real gateway process."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.support import (
    URL_PATTERN,
    gateway_command,
    running_http_gateway,
    tool_call_samples,
    wait_for_text,
)

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def test_both_transports_share_one_gateway_and_its_counters(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=gateway_command(),
        args=["serve", "--transport", "both", "--port", "0"],
        env=gateway_env,
        cwd=str(tmp_path),
    )
    stderr_path = tmp_path / "stderr.log"
    with anyio.fail_after(60), stderr_path.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as stdio_session,
        ):
            await stdio_session.initialize()
            url = (await wait_for_text(stderr_path, URL_PATTERN)).group(1)
            assert url.startswith("http://127.0.0.1:")
            assert url.endswith("/mcp")
            base = url.removesuffix("/mcp")

            async with Client(url) as http_client:
                listed = await http_client.list_tools()
                assert "gateway_info" in [tool.name for tool in listed.tools]
                result = await http_client.call_tool("gateway_info", {})
                assert not result.is_error
                assert result.structured_content is not None
                assert result.structured_content["transports"] == ["stdio", "http"]

            async with httpx.AsyncClient(base_url=base) as web:
                health = await web.get("/health")
                assert health.status_code == 200
                body = health.json()
                assert body["status"] == "ok"
                assert body["version"]
                assert body["uptime_s"] >= 0
                assert body["components"]["http"] == {"status": "ok"}
                assert body["components"]["stdio"] == {"status": "ok"}

                metrics = await web.get("/metrics")
                assert metrics.status_code == 200
                assert metrics.headers["content-type"].startswith("text/plain")
                assert tool_call_samples(metrics.text) == {("gateway_info", "ok"): 1.0}

            # The stdio client sees the call made over HTTP: one gateway, one state.
            seen = await stdio_session.call_tool("gateway_info", {})
            assert seen.structured_content is not None
            assert seen.structured_content["counts"]["tool_calls"] == {"ok": 1}

            async with httpx.AsyncClient(base_url=base) as web:
                after = tool_call_samples((await web.get("/metrics")).text)
            assert after == {("gateway_info", "ok"): 2.0}


async def test_http_only_gateway_answers_plain_routes_and_rejects_unknown_ones(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(60):
        async with running_http_gateway(gateway_env, tmp_path) as (process, url, stderr_path):
            try:
                base = url.removesuffix("/mcp")
                async with httpx.AsyncClient(base_url=base) as web:
                    missing = await web.get("/nope")
                    assert missing.status_code == 404
                    assert missing.json()["endpoints"]["mcp"] == "/mcp"

                    wrong_method = await web.post("/health")
                    assert wrong_method.status_code == 405
                    assert "GET" in wrong_method.headers["allow"]

                    assert (await web.delete("/metrics")).status_code == 405

                    health = await web.get("/health")
                    assert health.json()["components"]["stdio"]["status"] == "disabled"

                async with Client(url) as client:
                    unknown = await client.call_tool("no_such_tool", {})
                    assert unknown.is_error
                    assert "Unknown tool 'no_such_tool'" in unknown.content[0].text  # type: ignore[union-attr]
            finally:
                process.send_signal(signal.SIGTERM)
                assert await process.wait() == 0
            assert process.stdout is not None
            printed = b"".join([chunk async for chunk in process.stdout])
            assert printed == b""  # logs go to stderr, never stdout
    assert "Traceback" not in stderr_path.read_text()


async def test_port_already_in_use_fails_fast_with_a_clear_message(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with anyio.fail_after(30):
            done = await anyio.run_process(
                [gateway_command(), "serve", "--transport", "http", "--port", str(port)],
                env=gateway_env,
                cwd=tmp_path,
                check=False,
            )
    assert done.returncode == 1
    lines = done.stderr.decode().strip().splitlines()
    assert lines == [
        f"archon-gateway: error: cannot listen on 127.0.0.1:{port}: the port is already in use "
        "(is another gateway running? choose one with --port or ARCHON_PORT)"
    ]
    assert done.stdout == b""


async def test_sigterm_with_an_open_http_session_stream_stops_cleanly(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(60):
        # A legacy (initialize-based) session keeps a GET event stream open.
        async with (
            running_http_gateway(gateway_env, tmp_path) as (process, url, stderr_path),
            streamable_http_client(url, terminate_on_close=False) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await wait_for_text(stderr_path, r"Created new transport with session ID")
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    stderr_text = stderr_path.read_text()
    assert "Traceback" not in stderr_text
    assert " ERROR " not in stderr_text
    assert "stopped" in stderr_text
