"""Proxying real stdio upstreams through a real gateway process, over both front doors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from mcp import Client as SdkClient

from tests.support import (
    INITIALIZE,
    RawStdioPeer,
    gateway_command,
    running_gateway,
    running_http_gateway,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


def stdio_gateway(env: dict[str, str], cwd: Path) -> Client[StdioTransport]:
    transport = StdioTransport(gateway_command(), ["serve"], env=env, cwd=str(cwd))
    return Client(transport)


async def test_two_upstreams_are_listed_namespaced_and_callable_over_stdio(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest, node_bin: Path
) -> None:
    write_manifest("toolbox")
    write_manifest(
        "thinking",
        toolbox=False,
        command=str(node_bin / "mcp-server-sequential-thinking"),
        env={"DISABLE_THOUGHT_LOGGING": "true"},
    )
    with anyio.fail_after(60):
        async with stdio_gateway(gateway_env, tmp_path) as client:
            names = {tool.name for tool in await client.list_tools()}
            assert {"toolbox_echo", "toolbox_hang", "thinking_sequentialthinking"} <= names
            assert "gateway_info" in names

            echoed = await client.call_tool("toolbox_echo", {"text": "over stdio"})
            assert echoed.data == "over stdio"

            thought = await client.call_tool(
                "thinking_sequentialthinking",
                {
                    "thought": "Proxying keeps one session per upstream.",
                    "thoughtNumber": 1,
                    "totalThoughts": 1,
                    "nextThoughtNeeded": False,
                },
            )
            assert not thought.is_error
            assert '"thoughtNumber": 1' in json.dumps(thought.structured_content or {}) or any(
                "thoughtNumber" in getattr(block, "text", "") for block in thought.content
            )


async def test_hung_tool_times_out_upstream_sees_the_cancel_and_next_call_works(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    record = tmp_path / "record.txt"
    write_manifest("toolbox", env={"RECORD_FILE": str(record)}, tool_timeouts={"hang": 1.0})
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(20):
            # The limit counts from the call's start: on a busy machine a still-starting
            # upstream could use it all up before it ever saw the call.
            await client.call_tool("toolbox_echo", {"text": "up"})
            started = anyio.current_time()
            result = await client.call_tool("toolbox_hang", {"tag": "first"}, raise_on_error=False)
            elapsed = anyio.current_time() - started
        assert result.is_error
        assert result.content[0].text == "toolbox_hang timed out after 1 s"  # type: ignore[union-attr]
        assert elapsed >= 1.0

        await wait_for_text(record, r"cancelled first")
        with anyio.fail_after(10):
            after = await client.call_tool("toolbox_echo", {"text": "still here"})
        assert after.data == "still here"


async def test_client_cancellation_reaches_the_upstream_and_the_session_goes_on(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    record = tmp_path / "record.txt"
    write_manifest("toolbox", env={"RECORD_FILE": str(record)})
    async with running_gateway(gateway_env, tmp_path) as (process, _):
        peer = RawStdioPeer(process)
        with anyio.fail_after(30):
            await peer.initialize()
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": 7,
                    "method": "tools/call",
                    "params": {"name": "toolbox_hang", "arguments": {"tag": "client"}},
                }
            )
            await wait_for_text(record, r"started client")
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": 7, "reason": "user pressed stop"},
                }
            )
            await wait_for_text(record, r"cancelled client")
            reply = await peer.request(
                "tools/call", {"name": "toolbox_echo", "arguments": {"text": "next"}}
            )
            assert reply["result"]["structuredContent"] == {"result": "next"}


async def test_twenty_concurrent_calls_each_get_their_own_result(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    results: dict[int, object] = {}
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        Client(url) as client,
    ):

        async def call(index: int) -> None:
            result = await client.call_tool("toolbox_add", {"a": index, "b": 1000})
            results[index] = result.data

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for index in range(20):
                    tg.start_soon(call, index)
    assert results == {index: index + 1000 for index in range(20)}


async def test_upstream_progress_reaches_the_calling_client(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest, node_bin: Path
) -> None:
    write_manifest("toolbox")
    write_manifest("everything", toolbox=False, command=str(node_bin / "mcp-server-everything"))
    seen: list[tuple[str, float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((message or "", progress, total))

    with anyio.fail_after(60):
        async with stdio_gateway(gateway_env, tmp_path) as client:
            done = await client.call_tool(
                "toolbox_slow", {"steps": 3, "delay": 0.05}, progress_handler=on_progress
            )
            assert done.data == "done after 3 steps"
            assert [(progress, total) for _, progress, total in seen] == [
                (1, 3),
                (2, 3),
                (3, 3),
            ]
            seen.clear()
            names = {tool.name for tool in await client.list_tools()}
            assert "everything_trigger-long-running-operation" in names
            third_party = await client.call_tool(
                "everything_trigger-long-running-operation",
                {"duration": 0.3, "steps": 3},
                progress_handler=on_progress,
            )
            assert not third_party.is_error
            assert len(seen) == 3


async def test_bad_calls_get_clear_errors_and_upstream_errors_pass_through_intact(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(20):
            unknown = await client.call_tool("toolbox_nope", {}, raise_on_error=False)
            assert unknown.is_error
            assert "Unknown tool 'toolbox_nope'" in unknown.content[0].text  # type: ignore[union-attr]

            namespace = await client.call_tool("nothing_echo", {}, raise_on_error=False)
            assert namespace.is_error
            assert "Unknown tool 'nothing_echo'" in namespace.content[0].text  # type: ignore[union-attr]

            wrong = await client.call_tool(
                "toolbox_add", {"a": "three", "b": 2}, raise_on_error=False
            )
            assert wrong.is_error
            text = wrong.content[0].text  # type: ignore[union-attr]
            # The upstream's own validation message, as the upstream wrote it.
            assert "validation error for call[add]" in text
            assert "Input should be a valid integer" in text

            fine = await client.call_tool("toolbox_add", {"a": 3, "b": 2})
            assert fine.data == 5


async def test_broken_manifests_and_upstreams_are_reported_while_good_ones_serve(
    gateway_env: dict[str, str],
    tmp_path: Path,
    manifests_dir: Path,
    write_manifest: WriteManifest,
) -> None:
    write_manifest("toolbox")
    write_manifest(
        "crashy",
        args=[str(Path(__file__).parent / "exit_at_start.py")],
    )
    write_manifest("missing", toolbox=False, command="no-such-mcp-server", install_hint="pip x")
    (manifests_dir / "typo.toml").write_text('command = "x"\ntimout = 3\n')
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, stderr):
        async with Client(url) as client:
            with anyio.fail_after(30):
                names = {tool.name for tool in await client.list_tools()}
        assert "toolbox_echo" in names
        assert not any(name.startswith(("crashy_", "missing_", "typo_")) for name in names)

        log = stderr.read_text()
        assert "typo.toml: unknown field 'timout'" in log
        async with httpx.AsyncClient() as web:
            health = (await web.get(url.removesuffix("/mcp") + "/health")).json()
    components = health["components"]
    assert health["status"] == "degraded"
    toolbox_tools = sum(name.startswith("toolbox_") for name in names)
    assert components["upstream:toolbox"] == {"status": "ok", "detail": f"{toolbox_tools} tools"}
    assert components["upstream:missing"] == {
        "status": "degraded",
        "detail": "command not found: no-such-mcp-server (pip x)",
    }
    crashy = components["upstream:crashy"]
    assert crashy["status"] == "down"
    assert "exited with code 3 at start" in crashy["detail"]
    assert "missing configuration file toolbox.yaml" in crashy["detail"]
    assert "unknown field 'timout'" in components["manifests"]["detail"]


async def test_a_missing_command_degrades_health_unless_the_upstream_is_off_or_optional(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """A configured upstream that cannot run is a fault (as `doctor` counts it); one the
    user turned off, or an optional offer (the shipped manifests) not installed, is not."""
    write_manifest("off", toolbox=False, command="no-such-mcp-server", enabled=False)
    write_manifest("offer", toolbox=False, command="no-such-mcp-server", optional=True)
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        async with httpx.AsyncClient() as web:
            health = (await web.get(url.removesuffix("/mcp") + "/health")).json()
        assert health["status"] == "ok"
        assert health["components"]["upstream:off"]["status"] == "disabled"
        assert health["components"]["upstream:offer"] == {
            "status": "disabled",
            "detail": "command not found: no-such-mcp-server",
        }
    write_manifest("missing", toolbox=False, command="no-such-mcp-server")
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        async with httpx.AsyncClient() as web:
            health = (await web.get(url.removesuffix("/mcp") + "/health")).json()
        assert health["status"] == "degraded"
        assert health["components"]["upstream:missing"] == {
            "status": "degraded",
            "detail": "command not found: no-such-mcp-server",
        }


async def test_upstreams_get_a_minimal_environment_and_no_caller_headers(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    secret = "s3cret-token-value"
    env = {
        **gateway_env,
        "SERVICE_AUTH_TOKEN": secret,
        "GATEWAY_ONLY_VALUE": secret,
        "ALLOWED_KEY": "passed-on",
    }
    write_manifest("toolbox", pass_env=["ALLOWED_KEY"], env={"FIXED": "1"})
    async with running_http_gateway(env, tmp_path) as (_, url, _stderr):
        headers = {"Authorization": f"Bearer {secret}", "X-Service-Auth": secret}
        async with Client(StreamableHttpTransport(url, headers=headers)) as client:
            with anyio.fail_after(20):
                seen_env = (await client.call_tool("toolbox_environment", {})).structured_content
                seen_meta = (await client.call_tool("toolbox_request_meta", {})).structured_content
    assert seen_env is not None
    assert seen_env["ALLOWED_KEY"] == "passed-on"
    assert seen_env["FIXED"] == "1"
    assert seen_env["PATH"] == os.environ["PATH"]
    assert "SERVICE_AUTH_TOKEN" not in seen_env
    assert "GATEWAY_ONLY_VALUE" not in seen_env
    assert not any(key.startswith("ARCHON_") for key in seen_env)
    assert secret not in json.dumps(seen_env)
    assert secret not in json.dumps(seen_meta)


async def test_shutdown_stops_upstream_processes(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    async with running_gateway(gateway_env, tmp_path) as (process, stderr):
        peer = RawStdioPeer(process)
        with anyio.fail_after(30):
            reply = await peer.request("initialize", INITIALIZE)
            assert reply["result"]["serverInfo"]["name"] == "archon"
            await peer.request("tools/list")  # stdio starts upstreams lazily: this does
            pid = int((await wait_for_text(stderr, r"upstream toolbox ready \(pid (\d+)")).group(1))
            os.kill(pid, 0)  # alive
            assert process.stdin is not None
            await process.stdin.aclose()
            assert await process.wait() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_an_upstream_that_never_finishes_starting_does_not_hold_the_front_door(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    # Starts, then never answers initialize (within a long startup timeout).
    write_manifest("sleepy", args=["-c", "import time; time.sleep(3600)"], startup_timeout=300)
    env = {**gateway_env, "ARCHON_UPSTREAM_LIST_WAIT": "1"}
    async with running_gateway(env, tmp_path) as (process, _stderr):
        peer = RawStdioPeer(process)
        with anyio.fail_after(30):
            reply = await peer.initialize()
            assert reply["result"]["serverInfo"]["name"] == "archon"
            # Lazy start: the first tools/list starts both and waits 1 s for them.
            listed = await peer.request("tools/list")
            info = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            components = info["result"]["structuredContent"]["components"]
            assert components["upstream:sleepy"] == {"status": "degraded", "detail": "starting"}

            async def toolbox_ready() -> bool:
                info = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
                return bool(
                    info["result"]["structuredContent"]["upstreams"]["toolbox"]["state"] == "ready"
                )

            # Ready, tools listed: not just initialized (what its "ready" log line says).
            await wait_until(toolbox_ready)
            listed = await peer.request("tools/list")
            names = {tool["name"] for tool in listed["result"]["tools"]}
            assert "gateway_info" in names
            assert "toolbox_echo" in names
            assert not any(name.startswith("sleepy_") for name in names)
            echoed = await peer.request(
                "tools/call", {"name": "toolbox_echo", "arguments": {"text": "meanwhile"}}
            )
            assert echoed["result"]["structuredContent"] == {"result": "meanwhile"}


async def test_the_gateway_answers_initialize_before_its_upstreams_are_ready(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("sleepy", args=["-c", "import time; time.sleep(3600)"], startup_timeout=300)
    # Listing would wait long for sleepy; starting up and initialize must not wait at all,
    # even when upstreams start eagerly.
    env = {**gateway_env, "ARCHON_UPSTREAM_LIST_WAIT": "300", "ARCHON_UPSTREAM_LAZY_START": "0"}
    async with running_gateway(env, tmp_path) as (process, _):
        with anyio.fail_after(30):
            reply = await RawStdioPeer(process).initialize()
    assert reply["result"]["serverInfo"]["name"] == "archon"


async def test_a_call_abandoned_by_an_http_client_is_cancelled_upstream(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    record = tmp_path / "record.txt"
    write_manifest("toolbox", env={"RECORD_FILE": str(record)})
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        SdkClient(url) as client,
    ):
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def abandoned_call() -> None:
                    await client.call_tool("toolbox_hang", {"tag": "http"})

                tg.start_soon(abandoned_call)
                await wait_for_text(record, r"started http")
                tg.cancel_scope.cancel()  # the SDK client sends notifications/cancelled
            await wait_for_text(record, r"cancelled http")
            after = await client.call_tool("toolbox_echo", {"text": "after"})
            assert after.structured_content == {"result": "after"}
