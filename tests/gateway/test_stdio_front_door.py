"""The stdio front door, through the real `archon-gateway serve` process."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.support import RawStdioPeer, gateway_command, running_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


@asynccontextmanager
async def raw_gateway(
    env: dict[str, str], cwd: Path, *args: str
) -> AsyncIterator[tuple[RawStdioPeer, Path]]:
    async with running_gateway(env, cwd, *args) as (process, stderr_path):
        yield RawStdioPeer(process), stderr_path


async def test_official_stdio_client_initializes_lists_and_calls_gateway_info(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=gateway_command(), args=["serve"], env=gateway_env, cwd=str(tmp_path)
    )
    with anyio.fail_after(30), (tmp_path / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            assert init.server_info.name == "archon"
            tools = await session.list_tools()
            info_tool = next(tool for tool in tools.tools if tool.name == "gateway_info")
            assert info_tool.annotations is not None
            assert info_tool.annotations.read_only_hint is True

            result = await session.call_tool("gateway_info", {})
            assert not result.is_error
            info = result.structured_content
            assert info is not None
            assert info["transports"] == ["stdio"]
            assert info["components"]["stdio"]["status"] == "ok"
            assert info["components"]["http"]["status"] == "disabled"
            assert info["counts"]["tools"] == len(tools.tools)
            assert info["counts"]["sessions"] == {"stdio": 1}


async def test_unknown_tool_gets_a_clear_error_naming_it_and_a_suggestion(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(30):
        async with raw_gateway(gateway_env, tmp_path) as (peer, _):
            await peer.initialize()
            reply = await peer.request("tools/call", {"name": "gateway_inf", "arguments": {}})
            result = reply["result"]
            assert result["isError"] is True
            text = result["content"][0]["text"]
            assert "Unknown tool 'gateway_inf'" in text
            assert "Did you mean 'gateway_info'" in text


async def test_malformed_lines_get_json_rpc_errors_and_the_session_keeps_working(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(30):
        async with raw_gateway(gateway_env, tmp_path) as (peer, _):
            await peer.initialize()

            await peer.send_raw(b"{this is not json\n")
            parse_error = await peer.receive()
            assert parse_error["id"] is None
            assert parse_error["error"]["code"] == -32700
            assert "not valid JSON" in parse_error["error"]["message"]

            await peer.send_raw(b'{"jsonrpc": "2.0", "id": 41}\n')
            invalid = await peer.receive()
            assert invalid["id"] == 41
            assert invalid["error"]["code"] == -32600

            await peer.send_raw(b'[{"jsonrpc": "2.0", "id": 42, "method": "ping"}]\n')
            batch = await peer.receive()
            assert batch["error"]["code"] == -32600
            assert "batches are not supported" in batch["error"]["message"]

            await peer.send_raw(b'{"id": 43, "method": "ping"}\n')
            no_version = await peer.receive()
            assert no_version == {
                "jsonrpc": "2.0",
                "id": 43,
                "error": {"code": -32600, "message": 'Invalid Request: missing "jsonrpc": "2.0"'},
            }

            tools = await peer.request("tools/list")
            assert "gateway_info" in [tool["name"] for tool in tools["result"]["tools"]]


async def test_oversized_lines_are_answered_with_their_id_and_the_session_continues(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**gateway_env, "ARCHON_MAX_MESSAGE_BYTES": "4096"}
    big = "x" * 200_000
    small_but_over = "y" * 5_000  # arrives in one read: still over the limit
    with anyio.fail_after(30):
        async with raw_gateway(env, tmp_path) as (peer, _):
            await peer.initialize()
            # Python SDKs write the id first; the TypeScript SDK writes it last.
            id_first = f'{{"jsonrpc":"2.0","id":7,"method":"ping","params":{{"pad":"{big}"}}}}'
            id_last = (
                f'{{"method":"ping","params":{{"id":1,"pad":"{big}"}},"jsonrpc":"2.0","id":"t-8"}}'
            )
            no_id = f'{{"method":"ping","params":{{"pad":"{small_but_over}"}}}}'
            for line, expected_id in ((id_first, 7), (id_last, "t-8"), (no_id, None)):
                await peer.send_raw(line.encode() + b"\n")
                too_large = await peer.receive()
                assert too_large["id"] == expected_id
                assert too_large["error"]["code"] == -32600
                assert "exceeds the 4096 byte limit" in too_large["error"]["message"]
            pong = await peer.request("ping")
            assert pong["result"] == {}


async def test_stdin_eof_stops_the_gateway_cleanly(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(30):
        async with raw_gateway(gateway_env, tmp_path) as (peer, stderr_path):
            await peer.initialize()
            assert peer.process.stdin is not None
            await peer.process.stdin.aclose()
            assert await peer.process.wait() == 0
    stderr = stderr_path.read_text()
    assert "Traceback" not in stderr
    assert "stdin closed by the client" in stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("transport", ["stdio", "both"])
async def test_signal_stops_the_gateway_cleanly_without_traceback(
    gateway_env: dict[str, str], tmp_path: Path, signum: signal.Signals, transport: str
) -> None:
    with anyio.fail_after(30):
        async with raw_gateway(gateway_env, tmp_path, "--transport", transport, "--port", "0") as (
            peer,
            stderr_path,
        ):
            await peer.initialize()
            peer.process.send_signal(signum)
            assert await peer.process.wait() == 0
    stderr = stderr_path.read_text()
    assert "Traceback" not in stderr
    assert f"received {signum.name}" in stderr
    assert "stopped" in stderr


async def test_nothing_but_json_rpc_reaches_stdout_even_with_debug_logging(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(30):
        async with raw_gateway(gateway_env, tmp_path, "--log-level", "debug") as (peer, path):
            await peer.initialize()
            await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            assert peer.process.stdin is not None
            await peer.process.stdin.aclose()
            assert peer.process.stdout is not None
            rest = b""
            async for chunk in peer.process.stdout:
                rest += chunk
            assert rest == b""  # every byte was a reply the peer parsed as JSON
            assert await peer.process.wait() == 0
    assert "DEBUG" in path.read_text()


async def test_many_concurrent_requests_on_stdio_are_all_answered(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with anyio.fail_after(60):
        async with raw_gateway(gateway_env, tmp_path) as (peer, _):
            await peer.initialize()
            ids = set(range(1000, 1100))
            await peer.send_raw(
                b"".join(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": request_id,
                            "method": "tools/call",
                            "params": {"name": "gateway_info", "arguments": {}},
                        }
                    ).encode()
                    + b"\n"
                    for request_id in ids
                )
            )
            answered = set()
            for _ in ids:
                reply = await peer.receive()
                assert reply["result"]["isError"] is False
                answered.add(reply["id"])
            assert answered == ids
