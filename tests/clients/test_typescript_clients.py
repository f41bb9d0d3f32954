"""The official TypeScript SDK's Client and the MCP Inspector's CLI against a real gateway,
over stdio (the client spawns the gateway) and streamable HTTP, with the toolbox upstream
behind it: they list, call proxied tools (on the lane where it takes them) and hear
progress. Node packages come from tests/clients/node's lockfile; offline machines skip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support import (
    gateway_command,
    lane_call_samples,
    running_http_gateway,
    tool_call_samples,
)
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def run_node(cwd: Path, env: dict[str, str], *command: str) -> Any:
    """Run a Node.js client to completion; its stdout is one JSON document."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the official TypeScript clients need Node.js")
    with anyio.fail_after(90):
        done = await anyio.run_process([node, *command], cwd=cwd, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return json.loads(done.stdout)


def assert_sdk_client_output(output: dict[str, Any]) -> None:
    assert output["server"]["name"] == "archon"
    assert {"toolbox_echo", "toolbox_slow", "gateway_info"} <= set(output["tools"])
    assert [echo["structuredContent"] for echo in output["echoes"]] == [
        {"result": "one"},
        {"result": "two"},
    ]
    assert all(echo["isError"] is False for echo in output["echoes"])
    assert output["slow"]["structuredContent"] == {"result": "done after 3 steps"}
    # Progress arrived, in order. Not necessarily all three: the gateway sends all three
    # before the result, but the SDK may handle the last after the result and then drops it
    # (seen with the lane off too).
    steps = [note["progress"] for note in output["progress"]]
    assert steps, "no progress reached the client"
    assert steps == sorted(steps)
    assert all(note["total"] == 3 for note in output["progress"])


async def test_the_typescript_sdk_client_over_stdio_and_http_is_served_by_the_lane(
    client_node: Path, gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """The client spawns a `--transport both` gateway, runs its script over stdio, then over
    HTTP on the same gateway."""
    write_manifest("toolbox")
    script = str(client_node / "sdk_client.mjs")
    gateway = (gateway_command(), "serve", "--transport", "both", "--port", "0")
    output = await run_node(tmp_path, gateway_env, script, *gateway)

    assert_sdk_client_output(output["stdio"])
    assert_sdk_client_output(output["http"])
    # Both echoes and the slow call took the lane on each transport.
    assert lane_call_samples(output["metrics"]) == {"stdio": 3, "streamable-http": 3}


def inspector(client_node: Path, *args: str) -> list[str]:
    """The Inspector's CLI entry (no web UI is started), quiet, printing one JSON object."""
    launcher = client_node / "node_modules" / "@modelcontextprotocol" / "inspector"
    entry = launcher / "clients" / "launcher" / "build" / "index.js"
    return [str(entry), "--cli", "--quiet", "--format", "json", *args]


def inspector_env(env: dict[str, str], home: Path) -> dict[str, str]:
    # The Inspector keeps a catalog under HOME: a private one, never the user's.
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home)}


async def test_the_mcp_inspector_cli_over_stdio_calls_a_proxied_tool(
    client_node: Path, gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """Handshake era (the Inspector's default). The Inspector does not pass its environment
    on to the server it spawns, so the gateway's settings go by `-e`."""
    write_manifest("toolbox")
    settings = [
        part
        for key, value in gateway_env.items()
        if key.startswith("ARCHON_")
        for part in ("-e", f"{key}={value}")
    ]
    command = inspector(
        client_node,
        *settings,
        "--method=tools/call",
        "--tool-name=toolbox_echo",
        "--tool-arg",
        "text=inspected",
        "--",
        gateway_command(),
        "serve",
    )
    output = await run_node(tmp_path, inspector_env(gateway_env, tmp_path / "home"), *command)

    assert output["result"]["structuredContent"] == {"result": "inspected"}
    assert output["result"]["isError"] is False


async def test_the_mcp_inspector_cli_over_http_calls_a_proxied_tool_in_both_protocol_eras(
    client_node: Path, gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """The Inspector always declares roots, so on HTTP the SDK's path serves it (it may be
    asked questions mid-call); it must work all the same, counted by the same middleware."""
    write_manifest("toolbox")
    env = inspector_env(gateway_env, tmp_path / "home")
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        calls = {
            era: await run_node(
                tmp_path,
                env,
                *inspector(
                    client_node,
                    url,
                    f"--protocol-era={era}",
                    "--method=tools/call",
                    "--tool-name=toolbox_add",
                    "--tool-arg",
                    "a=2",
                    "b=40",
                ),
            )
            for era in ("legacy", "modern")
        }
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(url.replace("/mcp", "/metrics"))).text

    for era, output in calls.items():
        assert output["result"]["structuredContent"] == {"result": 42}, era
    modern_meta = calls["modern"]["result"]["_meta"]
    assert modern_meta["io.modelcontextprotocol/serverInfo"]["name"] == "archon"
    assert tool_call_samples(metrics)[("toolbox_add", "ok")] == 2
