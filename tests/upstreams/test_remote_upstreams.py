"""Remote upstreams behind the gateway, against real HTTP servers on 127.0.0.1:
server-everything (npm) in its streamableHttp and sse modes, and remote_server.py, which
hangs on purpose, forgets its sessions when restarted and records what it receives."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process
from fastmcp import Client

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.doctor import diagnose
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from archon_gateway.upstreams.manifest import load_manifests
from tests.support import (
    URL_PATTERN,
    RawStdioPeer,
    running_gateway,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

REMOTE_SERVER = Path(__file__).parent / "remote_server.py"
EVERYTHING = Path("@modelcontextprotocol/server-everything/dist/index.js")
SECRET = "sekrit-token-8d1f"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def running(argv: list[str], env: dict[str, str], log: Path) -> AsyncIterator[Process]:
    with log.open("ab") as out:
        process = await anyio.open_process(argv, stdout=out, stderr=out, env=env)
        try:
            yield process
        finally:
            with anyio.CancelScope(shield=True):
                process.kill()
                await process.wait()


@asynccontextmanager
async def everything(node_bin: Path, mode: str, port: int, log: Path) -> AsyncIterator[Process]:
    script = node_bin.parent / EVERYTHING
    env = {**os.environ, "PORT": str(port)}
    async with running(["node", str(script), mode], env, log) as process:
        with anyio.fail_after(20):
            while True:  # listening when a connection is accepted
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                except OSError:
                    await anyio.sleep(0.05)
                    continue
                await stream.aclose()
                break
        yield process


@asynccontextmanager
async def remote_server(port: int, record: Path, log: Path) -> AsyncIterator[int]:
    """remote_server.py on `port` (0: a free one); yields its port. `log` must be new."""
    env = {**os.environ, "REMOTE_RECORD_FILE": str(record)}
    async with running([sys.executable, str(REMOTE_SERVER), str(port)], env, log):
        yield int((await wait_for_text(log, r"listening on (\d+)")).group(1))


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def text_of(result: Any) -> str:
    value: str = result.content[0].text
    return value


async def test_server_everything_over_streamable_http_and_sse_behind_both_front_doors(
    tmp_path: Path, gateway_env: dict[str, str], write_manifest: WriteManifest, node_bin: Path
) -> None:
    http_port, sse_port = free_port(), free_port()
    write_manifest("ev", toolbox=False, url=f"http://127.0.0.1:{http_port}/mcp")
    write_manifest("evsse", toolbox=False, url=f"http://127.0.0.1:{sse_port}/sse", transport="sse")
    log = tmp_path / "everything.log"
    async with (
        everything(node_bin, "streamableHttp", http_port, log),
        everything(node_bin, "sse", sse_port, log),
    ):
        both = ("--transport", "both", "--port", "0")
        async with running_gateway(gateway_env, tmp_path, *both) as (process, stderr):
            url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
            progress: list[float] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append(done)

            async with Client(url) as client:
                with anyio.fail_after(60):
                    names = {tool.name for tool in await client.list_tools()}
                    assert {"ev_echo", "evsse_echo", "ev_get-sum"} <= names
                    for prefix in ("ev", "evsse"):
                        result = await client.call_tool(
                            f"{prefix}_trigger-long-running-operation",
                            {"duration": 0.3, "steps": 3},
                            progress_handler=on_progress,
                        )
                        assert "Long running operation completed" in text_of(result)
            assert progress == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]

            peer = RawStdioPeer(process)
            with anyio.fail_after(60):
                await peer.initialize()
                for prefix in ("ev", "evsse"):
                    reply = await peer.request(
                        "tools/call",
                        {"name": f"{prefix}_get-sum", "arguments": {"a": 2, "b": 40}},
                    )
                    assert "42" in reply["result"]["content"][0]["text"]
            # The gateway's own log never names a remote's URL query (httpx stays quiet).
            assert "sessionId=" not in stderr.read_text()


async def test_a_restarted_remote_is_reconnected_and_a_forgotten_session_renewed_in_one_call(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest, node_bin: Path
) -> None:
    port = free_port()
    write_manifest("ev", toolbox=False, url=f"http://127.0.0.1:{port}/mcp")
    settings = Settings(
        data_dir=tmp_path / "data",
        manifests_dir=manifests_dir,
        upstream_restart_backoff=0.1,
        upstream_crash_loop_retry=0.5,
        upstream_ping_interval=3600,
    )
    server = build_gateway(settings, environ=dict(os.environ))
    log = tmp_path / "everything.log"
    echo = {"message": "hi"}
    async with Client(server) as client:
        with anyio.fail_after(90):
            async with everything(node_bin, "streamableHttp", port, log):
                assert text_of(await client.call_tool("ev_echo", echo)) == "Echo: hi"
            # Back before the gateway noticed: it forgot our session; one call still works.
            async with everything(node_bin, "streamableHttp", port, log):
                assert text_of(await client.call_tool("ev_echo", echo)) == "Echo: hi"
            # Down: the call fails at once and the supervisor retries with backoff.
            down = await client.call_tool("ev_echo", echo, raise_on_error=False)
            assert down.is_error
            assert "upstream 'ev'" in text_of(down)
            async with everything(node_bin, "streamableHttp", port, log):

                async def answers() -> bool:
                    result = await client.call_tool("ev_echo", echo, raise_on_error=False)
                    return not result.is_error

                await wait_until(answers, within=30, every=0.2)


async def test_a_hung_remote_tool_times_out_tells_the_remote_and_opens_only_its_own_breaker(
    tmp_path: Path,
    manifests_dir: Path,
    write_manifest: WriteManifest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record, log = tmp_path / "record.jsonl", tmp_path / "remote.log"
    async with remote_server(0, record, log) as port:
        write_manifest(
            "remote",
            toolbox=False,
            url=f"http://127.0.0.1:{port}/mcp",
            headers={"Authorization": "Bearer ${REMOTE_TOKEN}", "X-Team": "${TEAM}"},
            tool_timeouts={"hang": 0.3},
        )
        write_manifest(
            "nokey",
            toolbox=False,
            url=f"http://127.0.0.1:{port}/mcp",
            headers={"Authorization": "Bearer ${NOT_SET_TOKEN}"},
        )
        settings = Settings(
            data_dir=tmp_path / "data",
            manifests_dir=manifests_dir,
            upstream_ping_interval=0.2,
        )
        environ = {**os.environ, "REMOTE_TOKEN": SECRET, "TEAM": "blue"}
        environ.pop("NOT_SET_TOKEN", None)
        server = build_gateway(settings, environ=environ)
        web = httpx.AsyncClient(
            transport=httpx.ASGITransport(build_http_app(server, "/mcp")), base_url="http://gw"
        )
        async with Client(server) as client, web:
            with anyio.fail_after(60):
                # Headers with ${VAR} reach the server, resolved.
                assert text_of(await client.call_tool("remote_whoami", {})) == "blue"
                assert records(record)[0]["authorization"] == f"Bearer {SECRET}"

                for attempt in range(5):
                    hung = await client.call_tool("remote_hang", {}, raise_on_error=False)
                    assert text_of(hung) == "remote_hang timed out after 0.3 s"
                    assert text_of(await client.call_tool("remote_echo", {"text": "ok"})) == "ok"
                    cancelled = [
                        entry
                        for entry in records(record)
                        if entry.get("notification") == "notifications/cancelled"
                    ]
                    assert len(cancelled) == attempt + 1
                fast = await client.call_tool("remote_hang", {}, raise_on_error=False)
                assert text_of(fast).startswith("tool remote_hang unavailable (circuit open")
                echoed = await client.call_tool("remote_echo", {"text": "still"})
                assert text_of(echoed) == "still"

                body = (await web.get("/health")).json()
                upstreams = body["upstreams"]
                pinged = upstreams["remote"]["last_ping_ms"]
                assert upstreams["remote"]["state"] == "ready"
                assert upstreams["remote"]["transport"] == "streamable-http"
                assert body["breakers"]["tool remote_hang"]["state"] == "open"
                assert body["breakers"]["upstream remote"]["state"] == "closed"
                assert upstreams["nokey"]["state"] == "disabled"
                assert upstreams["nokey"]["last_error"] == (
                    "header Authorization needs environment variable NOT_SET_TOKEN, "
                    "which is not set"
                )

                async def pinged_again() -> bool:
                    now = (await web.get("/health")).json()["upstreams"]["remote"]
                    return bool(now["last_ping_ms"] != pinged)

                await wait_until(pinged_again, within=10)
                metrics = (await web.get("/metrics")).text
                info = await client.call_tool("gateway_info", {})

        found = load_manifests([manifests_dir])
        reports = await diagnose(found, gateway_env=environ, log_dir=tmp_path / "logs")
    by_name = {report.name: report for report in reports}
    assert by_name["remote"].state == "ready"
    assert by_name["remote"].command_found == f"http://127.0.0.1:{port}/mcp (streamable-http)"
    assert by_name["nokey"].state == "failed"
    assert "NOT_SET_TOKEN" in (by_name["nokey"].error or "")
    shown = [json.dumps(body), metrics, str(info), caplog.text]
    shown += [report.model_dump_json() for report in reports]
    assert not [place for place in shown if SECRET in place]
    assert [entry["deleted"] for entry in records(record) if "deleted" in entry]


async def test_a_remote_that_forgets_its_sessions_gets_a_new_one_and_the_call_is_replayed(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    record, log = tmp_path / "record.jsonl", tmp_path / "remote.log"
    port = free_port()
    write_manifest("remote", toolbox=False, url=f"http://127.0.0.1:{port}/mcp")
    settings = Settings(
        data_dir=tmp_path / "data", manifests_dir=manifests_dir, upstream_ping_interval=3600
    )
    server = build_gateway(settings, environ=dict(os.environ))
    async with Client(server) as client:
        with anyio.fail_after(60):
            async with remote_server(port, record, log):
                assert text_of(await client.call_tool("remote_echo", {"text": "a"})) == "a"
            async with remote_server(port, record, tmp_path / "again.log"):
                assert text_of(await client.call_tool("remote_echo", {"text": "b"})) == "b"
    sessions = [entry["initialized"] for entry in records(record) if "initialized" in entry]
    assert len(sessions) == 2
