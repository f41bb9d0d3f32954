"""Upstreams misbehaving at the transport level (dying, flooding, spawning), seen through a
real gateway process and a real MCP client."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from fastmcp import Client
from mcp.types import TextContent

from tests.support import (
    RawStdioPeer,
    running_gateway,
    running_http_gateway,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import WriteManifest
from tests.upstreams.test_session import alive, wait_until_dead

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    return " ".join(block.text for block in content if isinstance(block, TextContent))


def peak_memory_kb(pid: int) -> int:
    """The process's peak resident set size (VmHWM) in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert found, status
    return int(found.group(1))


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


async def test_a_50_mb_reply_fails_only_its_call_and_is_never_held_in_memory(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("flood", faulty="flood", max_message_bytes=1024 * 1024)
    outcomes: dict[str, str] = {}
    async with (
        running_http_gateway(gateway_env, tmp_path) as (process, url, _stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(60):
            warm = await client.call_tool("flood_big", {"size": 100_000})
            assert text_of(warm) == "x" * 100_000
            peak_before = peak_memory_kb(process.pid)

            async def call(key: str, tool: str, arguments: dict[str, object]) -> None:
                result = await client.call_tool(tool, arguments, raise_on_error=False)
                outcomes[key] = text_of(result)[:300]

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "big", "flood_big", {"size": 50 * 1024 * 1024})
                for index in range(3):  # beside the flood, on the same upstream
                    tg.start_soon(call, f"echo {index}", "flood_echo", {"text": f"e{index}"})
            after = await client.call_tool("flood_echo", {"text": "after"})
            peak_after = peak_memory_kb(process.pid)
    assert outcomes.pop("big").startswith(
        "upstream 'flood' sent a reply over the 1048576-byte message limit"
    )
    assert outcomes == {f"echo {index}": f"e{index}" for index in range(3)}
    assert text_of(after) == "after"
    # Buffering the line would take 50 MB (and more for its copies); reading past it takes
    # little more than the 1 MB bound.
    assert peak_after - peak_before < 20 * 1024


def log_accounting(written: bytes) -> tuple[bytes, int]:
    """The stderr bytes a log kept, and how many its drop markers say were dropped (a
    writer that falls behind on a loaded machine drops and marks; none vanish unaccounted)."""
    marker = rb"\n\[archon-gateway: (\d+) bytes of stderr dropped here\]\n"
    dropped = sum(int(count) for count in re.findall(marker, written))
    return re.sub(marker, b"", written), dropped


def accounted_bytes(path: Path) -> int:
    kept, dropped = log_accounting(path.read_bytes()) if path.exists() else (b"", 0)
    return len(kept) + dropped


async def test_upstream_stderr_floods_go_to_its_log_and_never_to_the_gateways_stdout(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("noisy", faulty="flood")
    size = 2 * 1024 * 1024
    upstream_log = tmp_path / "data" / "logs" / "upstreams" / "noisy.log"
    async with running_gateway(gateway_env, tmp_path) as (process, stderr):
        peer = RawStdioPeer(process)
        with anyio.fail_after(30):
            await peer.initialize()
            flood = await peer.request(  # its first use starts it (lazy start on stdio)
                "tools/call", {"name": "noisy_stderr_flood", "arguments": {"size": size}}
            )
            assert flood["result"]["content"][0]["text"] == f"wrote {size} bytes to stderr"
            echoed = await peer.request(
                "tools/call", {"name": "noisy_echo", "arguments": {"text": "clean"}}
            )
            assert echoed["result"]["content"][0]["text"] == "clean"
            # All of it reaches the log while the gateway runs. (Stopping the gateway within
            # milliseconds of a flood can still lose its tail: an open bug, see the notes.)
            await wait_until(lambda: accounted_bytes(upstream_log) == size)
            assert process.stdin is not None
            await process.stdin.aclose()
            assert await process.wait() == 0
            with pytest.raises(anyio.IncompleteRead):  # stdout ended: nothing else came
                await peer.receive()
    kept, dropped = log_accounting(upstream_log.read_bytes())
    assert set(kept) <= set(b"xy\n")
    assert len(kept) + dropped == size
    assert "x" * 99 not in stderr.read_text()


async def test_a_dying_upstream_fails_calls_in_flight_and_leaves_no_process_behind(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    kid_children, keeper_children = tmp_path / "kid.pids", tmp_path / "keeper.pids"
    record = tmp_path / "kid.calls"
    write_manifest(
        "kid",
        faulty="spawn-child",
        env={"FAULTY_CHILD_PID_FILE": str(kid_children), "FAULTY_RECORD_FILE": str(record)},
    )
    write_manifest(
        "keeper", faulty="spawn-child", env={"FAULTY_CHILD_PID_FILE": str(keeper_children)}
    )
    outcomes: list[str] = []
    async with running_http_gateway(gateway_env, tmp_path) as (process, url, stderr):
        async with Client(url) as client:
            with anyio.fail_after(30):  # the sleeping call alone would take 60 s
                await wait_for_text(stderr, r"upstream kid ready")
                await wait_for_text(stderr, r"upstream keeper ready")
                grandchild = pids_in(kid_children)[0]

                async def call(tool: str, arguments: dict[str, object]) -> None:
                    result = await client.call_tool(tool, arguments, raise_on_error=False)
                    outcomes.append(text_of(result))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, "kid_sleep", {"seconds": 60})
                    await wait_for_text(record, "called sleep")
                    tg.start_soon(call, "kid_die", {})
                # It held the dead upstream's stdout open; it went with its process group.
                await wait_until_dead(grandchild)
                assert text_of(await client.call_tool("keeper_echo", {"text": "on"})) == "on"
        assert all(alive(pid) for pid in pids_in(keeper_children))
        process.terminate()
        with anyio.fail_after(20):
            await process.wait()
    assert outcomes == ["upstream 'kid' exited with code 4"] * 2
    with anyio.fail_after(5):
        for pid in pids_in(kid_children) + pids_in(keeper_children):
            await wait_until_dead(pid)
