"""The official Python SDK's clients (`ClientSession` over `stdio_client`, `mcp.Client` over
streamable HTTP) and fastmcp's `Client`, in both protocol eras, against a real gateway with
the toolbox upstream behind it: repeated proxied calls are served by the lane once the
upstream is listed, progress arrives, a call past its time limit fails with a clear line,
and a handshake-era client hears the upstream's tools/list_changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx
import mcp_types as mt
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp.client.messages import MessageHandler
from fastmcp.exceptions import ToolError
from mcp import Client as SdkClient
from mcp import ClientSession, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.client.stdio import stdio_client

from tests.support import (
    URL_PATTERN,
    gateway_command,
    lane_call_samples,
    running_http_gateway,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

HANG_LIMIT = 0.5
# Per run: three echoes, the slow call and the hung one.
LANE_CALLS_PER_RUN = 5


def write_upstreams(write_manifest: WriteManifest) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": HANG_LIMIT})
    write_manifest("lc", faulty="list-changing")  # adds a tool on request, then says so


class SdkLike(Protocol):
    """What ClientSession and mcp.Client share."""

    async def list_tools(self) -> mt.ListToolsResult: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any: ...


@dataclass
class Run:
    tools: set[str]
    echoes: list[Any]
    slow: Any
    hung: Any
    progress: list[tuple[float, float | None]] = field(default_factory=list)


async def sdk_run(client: SdkLike) -> Run:
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, _: str | None) -> None:
        progress.append((done, total))

    tools = {tool.name for tool in (await client.list_tools()).tools}
    echoes = [await client.call_tool("toolbox_echo", {"text": str(n)}) for n in range(3)]
    slow_args = {"steps": 3, "delay": 0.01}
    slow = await client.call_tool("toolbox_slow", slow_args, progress_callback=on_progress)
    hung = await client.call_tool("toolbox_hang", {"tag": "limit"})
    return Run(tools, echoes, slow, hung, progress)


def assert_progress(progress: list[tuple[float, float | None]]) -> None:
    # Not necessarily all three steps: a client may handle the last one after the result and
    # drop it (see the TypeScript test); in order and of the right total, though.
    assert progress, "no progress reached the client"
    assert progress == sorted(progress)
    assert {total for _, total in progress} == {3}


def assert_sdk_run(run: Run) -> None:
    assert {"toolbox_echo", "toolbox_hang", "lc_add_tool"} <= run.tools
    assert [echo.structured_content for echo in run.echoes] == [
        {"result": str(n)} for n in range(3)
    ]
    assert run.slow.structured_content == {"result": "done after 3 steps"}
    assert_progress(run.progress)
    assert run.hung.is_error is True
    assert run.hung.content[0].text == f"toolbox_hang timed out after {HANG_LIMIT:g} s"


class SdkListChanges:
    """A ClientSession message handler that counts tools/list_changed."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, mt.ToolListChangedNotification):
            self.count += 1


async def metrics_of(url: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(url.replace("/mcp", "/metrics"))).text


async def test_the_python_sdk_clients_over_stdio_and_http_are_served_by_the_lane(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """ClientSession spawns a `--transport both` gateway over stdio; mcp.Client then calls
    the same gateway over HTTP in each era."""
    write_upstreams(write_manifest)
    server = StdioServerParameters(
        command=gateway_command(),
        args=["serve", "--transport", "both", "--port", "0"],
        env=gateway_env,
        cwd=str(tmp_path),
    )
    stderr = tmp_path / "gateway.stderr"
    changes = SdkListChanges()
    with stderr.open("w") as errlog, anyio.fail_after(90):
        async with (
            stdio_client(server, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=changes) as session,
        ):
            await session.initialize()
            url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
            over_stdio = await sdk_run(session)

            # A lane call that changes the upstream's catalog: the session hears it, and
            # the new tool is callable once listed again.
            added = await session.call_tool("lc_add_tool", {"name": "extra"})
            assert added.is_error is False
            await wait_until(lambda: changes.count > 0)

            async def listed() -> bool:
                return "lc_extra" in {tool.name for tool in (await session.list_tools()).tools}

            await wait_until(listed)
            extra = await session.call_tool("lc_extra", {"text": "new"})
            assert extra.content == [mt.TextContent(type="text", text="new")]

            over_http = {}
            for mode in ("legacy", "auto"):
                async with SdkClient(url, mode=mode) as client:
                    over_http[mode] = await sdk_run(client)
            metrics = await metrics_of(url)

    for run in (over_stdio, *over_http.values()):
        assert_sdk_run(run)
    lane = lane_call_samples(metrics)
    assert lane["stdio"] == LANE_CALLS_PER_RUN + 2  # and lc_add_tool, lc_extra
    assert lane["streamable-http"] == 2 * LANE_CALLS_PER_RUN


class ListChanges(MessageHandler):
    def __init__(self) -> None:
        self.count = 0

    async def on_tool_list_changed(self, message: mt.ToolListChangedNotification) -> None:
        self.count += 1


async def fastmcp_run(url: str, mode: str, changes: ListChanges) -> Run:
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, _: str | None) -> None:
        progress.append((done, total))

    async with FastMCPClient(
        url, mode=mode, progress_handler=on_progress, message_handler=changes
    ) as client:
        tools = {tool.name for tool in await client.list_tools()}
        echoes = [await client.call_tool("toolbox_echo", {"text": str(n)}) for n in range(3)]
        slow = await client.call_tool("toolbox_slow", {"steps": 3, "delay": 0.01})
        with pytest.raises(ToolError) as hung:
            await client.call_tool("toolbox_hang", {"tag": mode})
        if mode == "legacy":
            await client.call_tool("lc_add_tool", {"name": "extra"})
            await wait_until(lambda: changes.count > 0)
    return Run(tools, echoes, slow, hung.value, progress)


async def test_fastmcp_clients_over_http_are_served_by_the_lane_in_both_protocol_eras(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """`auto` negotiates 2026-07-28 with this gateway; it hears list changes only on a
    `subscriptions/listen` stream (tests/upstreams/test_supervision.py), so the
    list_changed part is the handshake era's."""
    write_upstreams(write_manifest)
    changes = ListChanges()
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        with anyio.fail_after(60):
            runs = {mode: await fastmcp_run(url, mode, changes) for mode in ("legacy", "auto")}
            metrics = await metrics_of(url)

    for run in runs.values():
        assert {"toolbox_echo", "toolbox_slow", "toolbox_hang"} <= run.tools
        assert [echo.data for echo in run.echoes] == ["0", "1", "2"]
        assert run.slow.data == "done after 3 steps"
        assert_progress(run.progress)
        assert str(run.hung) == f"toolbox_hang timed out after {HANG_LIMIT:g} s"
    assert changes.count > 0
    # Both runs, and the legacy one's lc_add_tool.
    assert lane_call_samples(metrics)["streamable-http"] == 2 * LANE_CALLS_PER_RUN + 1
