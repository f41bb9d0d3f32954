"""Live configuration through real gateway processes and real upstreams: manifests added,
edited and removed while the gateway runs (watched files, SIGHUP, gateway_reload and the
add/remove/list/reload commands), in both protocol eras, over stdio and HTTP."""

from __future__ import annotations

import os
import signal
import sys
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
from prometheus_client.parser import text_string_to_metric_families

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.live_config.configuration import ConfigSource
from archon_gateway.gateway.settings import load_settings
from tests.support import (
    admin_headers,
    gateway_command,
    running_http_gateway,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import TOOLBOX, WriteManifest
from tests.upstreams.test_remote_upstreams import remote_server

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


class ListChanges(MessageHandler):
    def __init__(self) -> None:
        self.tools = 0

    async def on_tool_list_changed(self, message: mt.ToolListChangedNotification) -> None:
        self.tools += 1


async def names(client: Client[Any]) -> set[str]:
    return {tool.name for tool in await client.list_tools()}


async def upstream_info(client: Client[Any], name: str) -> dict[str, Any]:
    info = (await client.call_tool("gateway_info", {})).structured_content or {}
    return dict(info["upstreams"][name])


async def reloads(base: str, trigger: str, outcome: str = "applied") -> float:
    """archon_config_reloads_total for one trigger and outcome, from /metrics."""
    async with httpx.AsyncClient() as web:
        text = (await web.get(f"{base}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "archon_config_reloads_total"
        and sample.labels == {"trigger": trigger, "outcome": outcome}
    )


async def reloaded(base: str, trigger: str, past: float) -> None:
    async def more() -> bool:
        return await reloads(base, trigger) > past

    await wait_until(more)


async def test_an_upstream_is_added_edited_and_removed_while_an_http_gateway_runs(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    record = tmp_path / "record"
    env = {"RECORD_FILE": str(record)}
    changes = ListChanges()
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        Client(url, message_handler=changes, mode="legacy") as client,
    ):
        base = url.removesuffix("/mcp")
        with anyio.fail_after(90):
            assert "tb_echo" not in await names(client)

            # Added: its tools appear and the client is told, without reconnecting.
            write_manifest("tb", env=env)
            await wait_until(lambda: changes.tools >= 1)
            assert "tb_echo" in await names(client)
            assert (await client.call_tool("tb_echo", {"text": "hi"})).data == "hi"
            pid = (await upstream_info(client, "tb"))["pid"]
            assert pid is not None

            # A tool's timeout edited: the next call has the new limit; the process is the same.
            past = await reloads(base, "watch")
            write_manifest("tb", env=env, tool_timeouts={"slow": 0.5})
            await reloaded(base, "watch", past)
            slow = await client.call_tool("tb_slow", {"steps": 1, "delay": 5}, raise_on_error=False)
            assert slow.is_error
            assert "timed out after 0.5 s" in str(slow.content[0].text)  # type: ignore[union-attr]
            assert (await upstream_info(client, "tb"))["pid"] == pid

            # Its args edited: restarted (a new process), still serving.
            past = await reloads(base, "watch")
            write_manifest("tb", env=env, args=[str(TOOLBOX), "--again"])
            await reloaded(base, "watch", past)
            assert (await client.call_tool("tb_echo", {"text": "back"})).data == "back"
            new_pid = (await upstream_info(client, "tb"))["pid"]
            assert new_pid not in (None, pid)
            # One notice per reload: the restart's own stop and start fold into it.
            await wait_until(lambda: changes.tools >= 3)
            assert changes.tools == 3

            # Removed: a call in flight ends with the clear error; the tools disappear.
            told = changes.tools
            answers: list[Any] = []

            async def hang() -> None:
                answers.append(
                    await client.call_tool("tb_hang", {"tag": "x"}, raise_on_error=False)
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(hang)
                await wait_for_text(record, "started x")
                (Path(gateway_env["ARCHON_MANIFESTS_DIR"]) / "tb.toml").unlink()
            assert answers[0].is_error
            assert "removed by a configuration change" in answers[0].content[0].text
            await wait_until(lambda: changes.tools > told)
            assert not {name for name in await names(client) if name.startswith("tb_")}
            await wait_until(lambda: not _alive(new_pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_over_stdio_an_added_upstream_appears_and_an_invalid_edit_changes_nothing(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    config = tmp_path / "archon.toml"
    config.write_text("")
    changes = ListChanges()
    target = StdioTransport(gateway_command(), ["serve"], env=gateway_env, cwd=str(tmp_path))
    async with Client(target, message_handler=changes, mode="legacy") as client:
        with anyio.fail_after(60):
            # Added while a desktop client is connected: it is told, and lists the new tools
            # (the upstream starts on that first listing, as stdio gateways do).
            assert "tb_echo" not in await names(client)
            write_manifest("tb")
            await wait_until(lambda: changes.tools >= 1)
            assert "tb_echo" in await names(client)
            assert (await client.call_tool("tb_echo", {"text": "a"})).data == "a"
            pid = (await upstream_info(client, "tb"))["pid"]

            # A manifest with a typo and an overlay for an upstream that does not exist.
            path = write_manifest("tb")
            path.write_text(path.read_text() + "timeot = 3\n")
            config.write_text("[upstreams.nope]\ntimeout = 2\n")
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["applied"] is False
            assert answer["changes"] == []
            problems = " | ".join(answer["problems"])
            assert "tb.toml: unknown field 'timeot'" in problems
            assert "[upstreams.nope]: no upstream manifest named 'nope'" in problems
            info = (await client.call_tool("gateway_info", {})).structured_content or {}
            assert info["components"]["manifests"]["status"] == "degraded"
            assert "timeot" in info["components"]["manifests"]["detail"]
            # Nothing changed: the same process still serves.
            assert (await client.call_tool("tb_echo", {"text": "b"})).data == "b"
            assert (await upstream_info(client, "tb"))["pid"] == pid

            # Fixed, with an archon.toml overlay and a setting that cannot change live.
            write_manifest("tb")
            config.write_text("port = 9999\n[upstreams.tb]\ntool_timeouts = { slow = 0.5 }\n")
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["applied"] is True, answer
            assert answer["needs_restart"] == ["port"]
            slow = await client.call_tool("tb_slow", {"steps": 1, "delay": 5}, raise_on_error=False)
            assert "timed out after 0.5 s" in str(slow.content[0].text)  # type: ignore[union-attr]
            assert (await upstream_info(client, "tb"))["pid"] == pid
            info = (await client.call_tool("gateway_info", {})).structured_content or {}
            assert info["components"]["manifests"]["status"] == "ok"


async def test_twenty_rapid_writes_make_one_reload(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("tb")
    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        # gateway_reload is an admin tool: over HTTP it needs the local admin token.
        Client(StreamableHttpTransport(url, headers=admin_headers(gateway_env))) as client,
    ):
        base = url.removesuffix("/mcp")
        with anyio.fail_after(60):
            await upstream_info(client, "tb")
            for step in range(20):
                write_manifest("tb", timeout=float(step + 1))
            await reloaded(base, "watch", 0)
            # Absence of a second reload can only be shown by waiting: several quiet times.
            await anyio.sleep(1.5)
            assert await reloads(base, "watch") == 1
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["changes"] == []  # the last write is what runs


async def test_sighup_reloads_and_a_2026_client_hears_of_it_on_its_listen_stream(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    env = {**gateway_env, "ARCHON_WATCH_CONFIG": "false", "ARCHON_LOG_LEVEL": "debug"}
    async with (
        running_http_gateway(env, tmp_path) as (process, url, stderr),
        SdkClient(url) as client,
    ):
        with anyio.fail_after(60):
            assert "tb_echo" not in {tool.name for tool in (await client.list_tools()).tools}
            async with client.listen(tools_list_changed=True) as subscription:
                write_manifest("tb")
                process.send_signal(signal.SIGHUP)
                async for event in subscription:
                    assert isinstance(event, ToolsListChanged)
                    break
            assert "tb_echo" in {tool.name for tool in (await client.list_tools()).tools}
            # The reload is an audit event: who (the signal) and what changed.
            found = await wait_for_text(stderr, r'audit (\{[^\n]*"config_reload"[^\n]*\})')
            assert '"signal"' in found.group(1)
            assert "added upstream tb" in found.group(1)


async def test_add_list_and_remove_commands_change_a_running_gateway(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    async def cli(*args: str) -> str:
        done = await anyio.run_process(
            [gateway_command(), *args], env=gateway_env, cwd=tmp_path, check=False
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    async with (
        running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(90):
            said = await cli("add", "tb", "--env", "A=1", "--", sys.executable, str(TOOLBOX))
            assert "wrote" in said

            async def listed() -> bool:
                return "tb_echo" in await names(client)

            await wait_until(listed)
            table = await cli("list", "--url", url)
            row = next(line for line in table.splitlines() if line.startswith("tb "))
            assert row.split()[1:3] == ["stdio", "ready"]
            assert int(row.split()[3]) > 0
            assert "nothing to change" in await cli("reload", "--url", url)
            await cli("remove", "tb")

            async def gone() -> bool:
                return "tb_echo" not in await names(client)

            await wait_until(gone)


async def test_a_remote_manifest_and_its_archon_toml_overlay_are_reloaded(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    record, log = tmp_path / "record.jsonl", tmp_path / "remote.log"
    config = tmp_path / "archon.toml"
    config.write_text("")
    flags = {"data_dir": tmp_path / "data", "manifests_dir": manifests_dir, "watch_config": False}
    source = ConfigSource(lambda: load_settings(config, flags))
    environ = {**os.environ, "TEAM": "blue", "OTHER_TEAM": "red"}
    server = build_gateway(source.load(), environ=environ, source=source)
    async with remote_server(0, record, log) as port, Client(server) as client:
        with anyio.fail_after(60):
            write_manifest(
                "remote",
                toolbox=False,
                url=f"http://127.0.0.1:{port}/mcp",
                headers={"X-Team": "${TEAM}"},
            )
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["changes"] == ["added upstream remote"]
            assert (await client.call_tool("remote_whoami", {})).content[0].text == "blue"  # type: ignore[union-attr]

            # An overlay changes how it is reached: reconnected with the new header.
            config.write_text('[upstreams.remote]\nheaders = { X-Team = "${OTHER_TEAM}" }\n')
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["changes"] == ["restarted upstream remote (headers changed)"]
            assert (await client.call_tool("remote_whoami", {})).content[0].text == "red"  # type: ignore[union-attr]

            (manifests_dir / "remote.toml").unlink()
            config.write_text("")
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["changes"] == ["removed upstream remote"]
            assert not [t for t in await client.list_tools() if t.name.startswith("remote_")]
