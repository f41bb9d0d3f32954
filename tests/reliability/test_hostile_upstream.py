"""A hostile upstream (deep, binary, slow-drip replies): each call gets a clear error, the
upstream is not restarted for it, and the next call is served."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from fastmcp import Client
from mcp.types import TextContent

from tests.support import RawStdioPeer, running_gateway, running_http_gateway
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    return " ".join(block.text for block in content if isinstance(block, TextContent))


async def test_deep_binary_and_dripping_replies_fail_only_their_own_call(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    starts = tmp_path / "starts"
    gateway_env["FAULTY_STARTS_FILE"] = str(starts)
    write_manifest(
        "hostile",
        faulty="hostile",
        tool_timeouts={"drip": 1.0},
        env={"FAULTY_STARTS_FILE": str(starts)},
    )
    async with (
        running_http_gateway(gateway_env, tmp_path) as (process, url, _stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(60):
            deep = await client.call_tool("hostile_deep", {"depth": 5000}, raise_on_error=False)
            assert deep.is_error
            assert "200-level JSON depth limit" in text_of(deep)
            assert "stopped by the gateway" not in text_of(deep)
            binary = await client.call_tool("hostile_binary", {})
            assert text_of(binary) == "after binary"
            started = anyio.current_time()
            drip = await client.call_tool("hostile_drip", {"seconds": 0.02}, raise_on_error=False)
            assert drip.is_error
            assert "timed out after 1 s" in text_of(drip)
            assert anyio.current_time() - started < 1.1 + 1.0
            after = await client.call_tool("hostile_echo", {"text": "still here"})
            assert text_of(after) == "still here"
        assert process.returncode is None
    assert len(starts.read_text().split()) == 1  # never restarted


async def test_a_call_sent_just_before_stdin_eof_is_answered(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("slow", faulty="")
    async with running_gateway(gateway_env, tmp_path) as (process, _stderr):
        peer = RawStdioPeer(process)
        with anyio.fail_after(60):
            await peer.initialize()
            await peer.request("tools/list")
            call = {"name": "slow_sleep", "arguments": {"seconds": 0.4}}
            await peer.send({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call})
            assert process.stdin is not None
            await process.stdin.aclose()
            reply = await peer.receive()
            while "id" not in reply:
                reply = await peer.receive()
            assert reply["id"] == 7
            assert reply["result"]["content"][0]["text"] == "slept 0.4 s"
            assert await process.wait() == 0
