"""Supervision through a real gateway process: restarts with backoff, crash loops, pings,
lazy start, idle stop, the restart tool, list_changed forwarding and what /health,
/metrics and gateway_info say about it. Upstreams are real misbehaving processes
(tests/upstreams/faulty_server.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as mt
import pytest
from fastmcp import Client
from fastmcp.client.messages import MessageHandler
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from mcp import Client as SdkClient
from mcp.shared.subscriptions import ToolsListChanged

from tests.support import (
    RawStdioPeer,
    admin_headers,
    gateway_command,
    running_gateway,
    running_http_gateway,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

FAST_RESTARTS = {
    "ARCHON_UPSTREAM_RESTART_BACKOFF": "0.1",
    "ARCHON_UPSTREAM_RESTART_BACKOFF_MAX": "0.2",
}


@asynccontextmanager
async def http_gateway(env: dict[str, str], cwd: Path) -> AsyncIterator[tuple[Client[Any], str]]:
    """A gateway process over HTTP, a client connected with the local admin token (it
    restarts upstreams), and the gateway's base URL."""
    async with running_http_gateway(env, cwd) as (_, url, _stderr):
        transport = StreamableHttpTransport(url, headers=admin_headers(env))
        async with Client(transport) as client:
            yield client, url.removesuffix("/mcp")


async def upstream_health(base: str, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as web:
        health = (await web.get(f"{base}/health")).json()
    return dict(health["upstreams"][name])


def text(result: Any) -> str:
    """The text a tool call answered (faulty_server sends no structured content)."""
    return str(result.content[0].text)


def starts(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_crash_fails_the_call_in_flight_and_the_upstream_comes_back(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    started = tmp_path / "starts"
    write_manifest("faulty", faulty="crash-on-call", env={"FAULTY_STARTS_FILE": str(started)})
    async with http_gateway({**gateway_env, **FAST_RESTARTS}, tmp_path) as (client, base):
        with anyio.fail_after(30):
            assert text(await client.call_tool("faulty_echo", {"text": "hi"})) == "hi"
            first_pid = (await upstream_health(base, "faulty"))["pid"]
            crashed = await client.call_tool("faulty_crash", {}, raise_on_error=False)
            assert crashed.is_error
            message = crashed.content[0].text  # type: ignore[union-attr]
            assert "faulty" in message
            assert "exited with code 3" in message

            async def back() -> bool:
                info = await upstream_health(base, "faulty")
                return bool(info["state"] == "ready")

            await wait_until(back)
            info = await upstream_health(base, "faulty")
            assert info["restarts"] == 1
            assert info["pid"] != first_pid
            assert "exited with code 3" in info["last_error"]
            assert text(await client.call_tool("faulty_echo", {"text": "again"})) == "again"
    assert starts(started) == 2
    assert not pid_alive(first_pid)


async def test_while_restarting_the_tools_stay_listed_and_calls_say_when_to_retry(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("faulty", faulty="crash-on-call")
    env = {**gateway_env, "ARCHON_UPSTREAM_RESTART_BACKOFF": "30"}
    async with http_gateway(env, tmp_path) as (client, base):
        with anyio.fail_after(30):
            await client.call_tool("faulty_crash", {}, raise_on_error=False)
            names = {tool.name for tool in await client.list_tools()}
            assert "faulty_echo" in names
            result = await client.call_tool("faulty_echo", {"text": "x"}, raise_on_error=False)
            assert result.is_error
            message = result.content[0].text  # type: ignore[union-attr]
            assert message.startswith("upstream 'faulty' is restarting, retry in ")
            assert "exited with code 3" in message
            info = await upstream_health(base, "faulty")
            assert info["state"] == "degraded"
            assert 20 <= info["retry_in_s"] <= 37

            restarted = await client.call_tool("gateway_restart_upstream", {"name": "faulty"})
            assert restarted.structured_content is not None
            assert restarted.structured_content["state"] == "ready"
            assert text(await client.call_tool("faulty_echo", {"text": "back"})) == "back"


async def test_hidden_while_down_when_the_catalog_should_not_keep_them(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("faulty", faulty="crash-on-call")
    env = {
        **gateway_env,
        "ARCHON_UPSTREAM_RESTART_BACKOFF": "30",
        "ARCHON_UPSTREAM_KEEP_TOOLS_WHEN_DOWN": "false",
        "ARCHON_LOG_LEVEL": "debug",
    }
    changes = ListChanges()
    async with running_http_gateway(env, tmp_path) as (_, url, stderr):
        # An HTTP gateway starts its upstream at once, and announces the upstream's tools
        # to the clients connected then: this client connects after that announcement, so
        # each notification it gets is news.
        await wait_for_text(stderr, r"tools changed: told \d+ client session")
        admin = StreamableHttpTransport(url, headers=admin_headers(env))
        async with Client(admin, message_handler=changes, mode="legacy") as client:
            with anyio.fail_after(30):
                assert "faulty_echo" in {tool.name for tool in await client.list_tools()}
                before = changes.count
                await client.call_tool("faulty_crash", {}, raise_on_error=False)
                await wait_until(lambda: changes.count > before)  # told: its tools went away
                names = {tool.name for tool in await client.list_tools()}
                assert not any(name.startswith("faulty_") for name in names)
                result = await client.call_tool("faulty_echo", {"text": "x"}, raise_on_error=False)
                assert "is restarting, retry in" in text(result)

                before = changes.count
                await client.call_tool("gateway_restart_upstream", {"name": "faulty"})
                await wait_until(lambda: changes.count > before)  # told: they are back
                assert "faulty_echo" in {tool.name for tool in await client.list_tools()}


async def test_an_upstream_that_keeps_dying_is_crash_looping_and_retried_only_slowly(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    started = tmp_path / "starts"
    die = "import os, sys; open(os.environ['STARTS'], 'a').write('x\\n'); sys.exit(7)"
    write_manifest("dying", args=["-c", die], env={"STARTS": str(started)})
    env = {
        **gateway_env,
        **FAST_RESTARTS,
        "ARCHON_UPSTREAM_CRASH_LOOP_RESTARTS": "3",
        "ARCHON_UPSTREAM_CRASH_LOOP_RETRY": "600",
    }
    async with http_gateway(env, tmp_path) as (client, base):

        async def looping() -> bool:
            return bool((await upstream_health(base, "dying"))["state"] == "crash_looping")

        await wait_until(looping)
        with anyio.fail_after(30):
            # Time that must pass, not state to wait for: several backoffs' worth, in which
            # a crash-looping upstream must not be started again.
            await anyio.sleep(0.5)
            assert starts(started) == 3
            info = await upstream_health(base, "dying")
            assert info["restarts"] == 3
            assert info["retry_in_s"] > 400  # 600 s, less jitter
            assert "exited with code 7 at start" in info["last_error"]
            # Its tools were never listed; a call in its namespace says why, not "unknown".
            called = await client.call_tool("dying_anything", {}, raise_on_error=False)
            message = text(called)
            assert message.startswith(
                "upstream 'dying' is crash-looping (3 crashes without staying up 120 s)"
            )
            assert "next retry in" in message
            assert "gateway_restart_upstream" in message
            forced = await client.call_tool("gateway_restart_upstream", {"name": "dying"})
            # Started at once; forgiven, so it may already be on its next quick retry.
            assert starts(started) >= 4
            assert forced.structured_content is not None
            assert forced.structured_content["state"] == "degraded"  # forgiven, then crashed
            unknown = await client.call_tool(
                "gateway_restart_upstream", {"name": "nope"}, raise_on_error=False
            )
            assert unknown.content[0].text == "no upstream named 'nope' (upstreams: dying)"  # type: ignore[union-attr]


async def test_a_crash_loop_retried_more_slowly_than_its_window_counts_every_crash(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """Slow retries outlast the window, so the window alone holds one crash; the message
    counts every crash since the upstream last stayed up (it used to say "1 crashes")."""
    write_manifest("dying", toolbox=False, command="sh", args=["-c", "exit 7"])
    env = {
        **gateway_env,
        **FAST_RESTARTS,
        "ARCHON_UPSTREAM_CRASH_LOOP_RESTARTS": "2",
        "ARCHON_UPSTREAM_CRASH_LOOP_WINDOW": "1",
        "ARCHON_UPSTREAM_CRASH_LOOP_RETRY": "1.3",
    }
    async with http_gateway(env, tmp_path) as (client, base):
        with anyio.fail_after(60):
            while True:  # until a message is read between two crashes, after the 4th
                before = (await upstream_health(base, "dying"))["restarts"]
                called = await client.call_tool("dying_anything", {}, raise_on_error=False)
                after = (await upstream_health(base, "dying"))["restarts"]
                if before == after >= 4:
                    break
                await anyio.sleep(0.05)
    assert text(called).startswith(
        f"upstream 'dying' is crash-looping ({after} crashes without staying up 1 s)"
    )


async def test_an_upstream_that_stops_answering_pings_is_restarted(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    started = tmp_path / "starts"
    write_manifest("faulty", faulty="ping-hang", env={"FAULTY_STARTS_FILE": str(started)})
    env = {
        **gateway_env,
        **FAST_RESTARTS,
        "ARCHON_UPSTREAM_PING_INTERVAL": "0.1",
        "ARCHON_UPSTREAM_PING_TIMEOUT": "0.3",
        "ARCHON_UPSTREAM_MISSED_PINGS": "2",
    }
    async with http_gateway(env, tmp_path) as (client, base):

        async def pinged() -> bool:
            return (await upstream_health(base, "faulty"))["last_ping_ms"] is not None

        await wait_until(pinged)
        with anyio.fail_after(30):
            await client.call_tool("faulty_stop_ping", {})
            # Busy is not dead: while a call runs, missed pings do not restart it.
            slept = await client.call_tool("faulty_sleep", {"seconds": 1.5})
            assert not slept.is_error, text(slept)
            assert (await upstream_health(base, "faulty"))["restarts"] == 0

        async def restarted() -> bool:
            info = await upstream_health(base, "faulty")
            return bool(info["restarts"] >= 1 and info["state"] == "ready")

        await wait_until(restarted)
        info = await upstream_health(base, "faulty")
        assert info["last_error"] == "stopped answering pings (2 missed)"
        assert starts(started) >= 2
        async with httpx.AsyncClient() as web:
            metrics = (await web.get(f"{base}/metrics")).text
        assert 'archon_upstream_state{state="ready",upstream="faulty"} 1.0' in metrics
        assert 'archon_upstream_restarts_total{upstream="faulty"}' in metrics
        assert 'archon_upstream_ping_seconds_count{upstream="faulty"}' in metrics


async def test_stdio_starts_upstreams_on_first_use_and_stops_them_when_idle(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    started = tmp_path / "starts"
    write_manifest("faulty", faulty="crash-on-call", env={"FAULTY_STARTS_FILE": str(started)})
    env = {**gateway_env, "ARCHON_UPSTREAM_IDLE_MINUTES": "0.01"}  # 0.6 s
    async with running_gateway(env, tmp_path) as (process, _):
        # A raw peer: a client library might list tools on its own and start everything.
        peer = RawStdioPeer(process)

        async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            reply = await peer.request("tools/call", {"name": name, "arguments": arguments})
            return dict(reply["result"])

        async def faulty_info() -> dict[str, Any]:
            info = (await call("gateway_info", {}))["structuredContent"]
            return dict(info["upstreams"]["faulty"])

        with anyio.fail_after(30):
            await peer.initialize()
            assert (await faulty_info())["state"] == "stopped"
            assert starts(started) == 0  # initialize and a native call start nothing
            assert (await call("faulty_echo", {"text": "a"}))["content"][0]["text"] == "a"
            assert starts(started) == 1
            pid = (await faulty_info())["pid"]

        async def idle_stopped() -> bool:
            return (await faulty_info())["state"] == "stopped"

        async def process_gone() -> bool:
            return not pid_alive(pid)

        await wait_until(idle_stopped)
        await wait_until(process_gone)  # stopping it may take a moment after the state says so
        with anyio.fail_after(30):
            listed = await peer.request("tools/list")
            assert "faulty_echo" in {tool["name"] for tool in listed["result"]["tools"]}
            assert starts(started) == 1  # listed as last known, without a start
            assert (await call("faulty_echo", {"text": "b"}))["content"][0]["text"] == "b"
            assert starts(started) == 2


class ListChanges(MessageHandler):
    def __init__(self) -> None:
        self.count = 0

    async def on_tool_list_changed(self, message: mt.ToolListChangedNotification) -> None:
        self.count += 1


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_an_upstream_list_change_reaches_handshake_era_clients(
    transport: str, gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """What desktop clients speak today: list_changed arrives on their session."""
    write_manifest("lc", faulty="list-changing")
    changes = ListChanges()
    if transport == "stdio":
        target = StdioTransport(gateway_command(), ["serve"], env=gateway_env, cwd=str(tmp_path))
        async with Client(target, message_handler=changes, mode="legacy") as client:
            await _list_change_round_trip(client, changes)
    else:
        async with (
            running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
            Client(url, message_handler=changes, mode="legacy") as client,
        ):
            await _list_change_round_trip(client, changes)


async def test_an_upstream_list_change_reaches_a_2026_client_on_its_listen_stream(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("lc", faulty="list-changing")
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        SdkClient(url) as client,
    ):
        with anyio.fail_after(30):
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "lc_add_tool" in names
            async with client.listen(tools_list_changed=True) as subscription:
                await client.call_tool("lc_add_tool", {"name": "extra"})
                async for event in subscription:  # re-list on each change, as a client does
                    assert isinstance(event, ToolsListChanged)
                    names = {tool.name for tool in (await client.list_tools()).tools}
                    if "lc_extra" in names:
                        break


async def _list_change_round_trip(client: Client[Any], changes: ListChanges) -> None:
    with anyio.fail_after(30):
        names = {tool.name for tool in await client.list_tools()}
        assert "lc_add_tool" in names
        assert "lc_extra" not in names
        before = changes.count
        await client.call_tool("lc_add_tool", {"name": "extra"})
        await wait_until(lambda: changes.count > before)

        async def listed() -> bool:
            return "lc_extra" in {tool.name for tool in await client.list_tools()}

        await wait_until(listed)
        assert text(await client.call_tool("lc_extra", {"text": "new"})) == "new"


async def test_a_burst_of_list_changes_is_folded_into_few_rebuilds(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("lc", faulty="list-changing")
    env = {**gateway_env, "ARCHON_LOG_LEVEL": "debug"}
    async with (
        running_http_gateway(env, tmp_path) as (_, url, stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(30):
            await client.call_tool("lc_burst", {"n": 50})
            await wait_for_text(stderr, "upstream lc said its tools changed; re-listing")
            # Time that must pass, not state to wait for: room for any further rebuilds to
            # show, since the assertion is that few happen.
            await anyio.sleep(1)
    rebuilds = stderr.read_text().count("upstream lc said its tools changed; re-listing")
    assert 1 <= rebuilds < 10


def test_faulty_server_refuses_unknown_modes() -> None:
    # Guard for the fixtures above: a typo in a mode must not pass silently.
    import subprocess

    from tests.upstreams.conftest import FAULTY

    done = subprocess.run(
        [sys.executable, str(FAULTY), "no-such-mode"], capture_output=True, check=False
    )
    assert done.returncode == 2


async def test_the_cli_restarts_an_upstream_of_a_running_gateway(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("faulty", faulty="crash-on-call")
    async with http_gateway(gateway_env, tmp_path) as (client, base):
        with anyio.fail_after(30):
            await client.call_tool("faulty_echo", {"text": "up"})
            before = (await upstream_health(base, "faulty"))["pid"]
            command = [gateway_command(), "restart-upstream", "faulty", "--url", f"{base}/mcp"]
            done = await anyio.run_process(command, env=gateway_env, check=False)
            assert done.returncode == 0, done.stderr
            assert done.stdout.decode().startswith("upstream faulty: ready (pid ")
            after = await upstream_health(base, "faulty")
            assert after["pid"] != before
            assert after["restarts"] == 1
            assert not pid_alive(before)

            command[2] = "nope"
            done = await anyio.run_process(command, env=gateway_env, check=False)
            assert done.returncode == 1
            assert "no upstream named 'nope' (upstreams: faulty)" in done.stderr.decode()


async def test_the_cli_says_when_no_gateway_answers(gateway_env: dict[str, str]) -> None:
    url = "http://127.0.0.1:9/mcp"  # the discard port: nothing serves MCP there
    command = [gateway_command(), "restart-upstream", "x", "--url", url]
    with anyio.fail_after(60):
        done = await anyio.run_process(command, env=gateway_env, check=False)
    assert done.returncode == 1
    assert f"cannot reach the gateway at {url}" in done.stderr.decode()


async def test_refusals_while_restarting_do_not_open_the_upstreams_breaker(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("faulty", faulty="crash-on-call")
    env = {
        **gateway_env,
        "ARCHON_UPSTREAM_RESTART_BACKOFF": "30",
        "ARCHON_BREAKER_FAIL_MAX": "2",
        "ARCHON_BREAKER_RESET_TIMEOUT": "60",
    }
    async with http_gateway(env, tmp_path) as (client, _):
        with anyio.fail_after(30):
            await client.call_tool("faulty_crash", {}, raise_on_error=False)  # failure 1
            for _ in range(4):
                refused = await client.call_tool("faulty_echo", {"text": "x"}, raise_on_error=False)
                assert "is restarting, retry in" in text(refused)
            await client.call_tool("gateway_restart_upstream", {"name": "faulty"})
            # Back, and not shut out by a breaker that counted the refusals.
            assert text(await client.call_tool("faulty_echo", {"text": "ok"})) == "ok"


async def test_a_slow_upstream_joins_the_catalog_later_and_clients_are_told(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("slow", faulty="slow-start", env={"FAULTY_START_DELAY": "2"})
    env = {**gateway_env, "ARCHON_UPSTREAM_LIST_WAIT": "0.2"}
    changes = ListChanges()
    target = StdioTransport(gateway_command(), ["serve"], env=env, cwd=str(tmp_path))
    async with Client(target, message_handler=changes, mode="legacy") as client:
        with anyio.fail_after(30):
            # The first listing starts it (lazy) but does not wait for all of its start.
            names = {tool.name for tool in await client.list_tools()}
            assert "gateway_info" in names
            assert "slow_echo" not in names
            await wait_until(lambda: changes.count > 0)
            assert "slow_echo" in {tool.name for tool in await client.list_tools()}
            assert text(await client.call_tool("slow_echo", {"text": "late"})) == "late"


async def test_a_manifest_can_start_its_upstream_at_once_on_a_lazy_gateway(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("eager", faulty="crash-on-call", lazy_start=False, idle_minutes=60)
    write_manifest("lazy", faulty="crash-on-call")
    async with running_gateway(gateway_env, tmp_path) as (process, _):
        peer = RawStdioPeer(process)

        async def states() -> dict[str, str]:
            reply = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            upstreams = reply["result"]["structuredContent"]["upstreams"]
            return {name: info["state"] for name, info in upstreams.items()}

        async def eager_ready() -> bool:
            return (await states())["eager"] == "ready"

        with anyio.fail_after(30):
            await peer.initialize()
        await wait_until(eager_ready)
        assert (await states())["lazy"] == "stopped"
