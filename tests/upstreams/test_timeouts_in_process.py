"""Timeouts in one process, where tasks and descriptors can be counted."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import anyio
import pytest
from fastmcp import Client

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.settings import Settings
from tests.support import wait_until
from tests.upstreams.conftest import WriteManifest

pytestmark = pytest.mark.anyio


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.processes
async def test_many_timeouts_leave_no_tasks_or_descriptors_behind(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": 0.05})
    # Breakers off: 40 timeouts in a row would (rightly) open the upstream's breaker.
    settings = Settings(
        data_dir=tmp_path / "data", manifests_dir=manifests_dir, breakers_enabled=False
    )
    async with Client(build_gateway(settings, environ=dict(os.environ))) as client:
        with anyio.fail_after(60):
            # Warm up: the first call settles lazily created state.
            await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            await client.call_tool("toolbox_echo", {"text": "warm"})
            tasks_before, fds_before = len(asyncio.all_tasks()), open_fds()
            for _ in range(40):
                result = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
                assert result.content[0].text == "toolbox_hang timed out after 0.05 s"  # type: ignore[union-attr]
            after = await client.call_tool("toolbox_echo", {"text": "still fine"})
            assert after.data == "still fine"

            def settled() -> bool:  # cancelled replies arrived and were dropped
                return len(asyncio.all_tasks()) == tasks_before and open_fds() == fds_before

            with contextlib.suppress(TimeoutError):
                await wait_until(settled, within=5)
            assert len(asyncio.all_tasks()) == tasks_before
            assert open_fds() == fds_before


async def test_native_tools_get_the_gateway_default_timeout(tmp_path: Path) -> None:
    server = build_gateway(Settings(data_dir=tmp_path, tool_timeout=0.2, manifests_dir=tmp_path))

    @server.tool
    async def sleepy() -> str:
        await anyio.sleep(30)
        return "never"

    async with Client(server) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("sleepy", {}, raise_on_error=False)
    assert result.is_error
    assert result.content[0].text == "sleepy timed out after 0.2 s"  # type: ignore[union-attr]


@pytest.mark.processes
async def test_upstream_requests_to_the_gateway_are_answered_while_its_call_waits(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    # The upstream's tool only returns once the gateway has answered its ping and roots/list.
    write_manifest("toolbox")
    settings = Settings(data_dir=tmp_path / "data", manifests_dir=manifests_dir)
    async with Client(build_gateway(settings, environ=dict(os.environ))) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("toolbox_ask_client", {})
    assert result.structured_content == {"ping": "ok", "roots": []}


@pytest.mark.processes
async def test_oversized_replies_fail_only_their_call_and_junk_lines_are_skipped(
    tmp_path: Path,
    manifests_dir: Path,
    write_manifest: WriteManifest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_manifest("toolbox", max_message_bytes=64 * 1024)
    write_manifest("junk", args=[str(Path(__file__).parent / "garbage_server.py")])
    write_manifest("noisy", faulty="garbage")
    settings = Settings(data_dir=tmp_path / "data", manifests_dir=manifests_dir)
    async with Client(build_gateway(settings, environ=dict(os.environ))) as client:
        with anyio.fail_after(30):
            junk = await client.call_tool("noisy_junk", {"n": 5000})
            assert junk.content[0].text == "wrote junk"  # type: ignore[union-attr]
            echoed = await client.call_tool("noisy_echo", {"text": "next"})
            assert echoed.content[0].text == "next"  # type: ignore[union-attr]
            small = await client.call_tool("toolbox_big", {"size": 1000})
            assert small.data == "x" * 1000
            large = await client.call_tool("toolbox_big", {"size": 200_000}, raise_on_error=False)
            assert large.is_error
            text = large.content[0].text  # type: ignore[union-attr]
            assert "upstream 'toolbox' sent a reply over the 65536-byte message limit" in text
            after = await client.call_tool("toolbox_echo", {"text": "next"})
            assert after.data == "next"

            for attempt in range(3):
                answered = await client.call_tool("junk_echo", {"text": f"clean {attempt}"})
                assert answered.content[0].text == f"clean {attempt}"  # type: ignore[union-attr]
    assert "junk: skipped a non-JSON-RPC line on stdout" in caplog.text
    assert "Loading model weights" in caplog.text
    assert "(2 so far)" in caplog.text  # the JSON line that is not JSON-RPC counts too
    # Thousands of junk lines, a handful of log lines (the first few, then powers of ten).
    noisy = [r for r in caplog.records if r.getMessage().startswith("noisy: skipped")]
    assert 3 < len(noisy) <= 7
