"""Catalog mode and profiles end to end: a real gateway process, a real stdio upstream, real
MCP clients over stdio and streamable HTTP."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.manifest_writer import to_toml
from tests.support import gateway_command, running_http_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

TOOLBOX = Path(__file__).parents[1] / "upstreams" / "toolbox_server.py"
META = ["archon_search_tools", "archon_describe_tool", "archon_call_tool"]
OPS_TOKEN = "ops-profile-token-0123456789"
ADMIN_TOKEN = "admin-service-token-0123456789"
CONFIG = """
[profiles.ops]
include = ["toolbox_*", "code_*", "gateway_info"]
exclude = ["toolbox_add"]
catalog_mode = "menu"
"""


def with_toolbox(env: dict[str, str], cwd: Path, config: str) -> None:
    manifests = Path(env["ARCHON_MANIFESTS_DIR"])
    manifest = Manifest(name="toolbox", command=sys.executable, args=[str(TOOLBOX)])
    (manifests / "toolbox.toml").write_text(to_toml(manifest))
    (cwd / "archon.toml").write_text(config)


def counted(metrics: str, tool: str, outcome: str = "ok") -> float:
    pattern = rf'archon_tool_calls_total{{outcome="{outcome}",tool="{tool}"}} (\S+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


async def test_a_stdio_menu_client_searches_describes_and_calls_within_its_profile(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    with_toolbox(gateway_env, tmp_path, CONFIG)
    transport = StdioTransport(
        gateway_command(), ["serve", "--profile", "ops"], env=gateway_env, cwd=str(tmp_path)
    )
    with anyio.fail_after(90):
        async with Client(transport) as client:
            assert [tool.name for tool in await client.list_tools()] == META

            found = await client.call_tool(
                "archon_search_tools", {"query": "repeat my text back to me", "top_k": 3}
            )
            hits = found.structured_content["results"]  # type: ignore[index]
            assert hits[0]["name"] == "toolbox_echo"
            assert hits[0]["namespace"] == "toolbox"
            native = await client.call_tool(
                "archon_search_tools", {"query": "analyze python module structure classes"}
            )
            names = [hit["name"] for hit in native.structured_content["results"]]  # type: ignore[index]
            assert "code_analyze" in names[:3]

            described = await client.call_tool("archon_describe_tool", {"name": "toolbox_echo"})
            schema = described.structured_content["input_schema"]  # type: ignore[index]
            assert schema["properties"]["text"]["type"] == "string"

            echoed = await client.call_tool(
                "archon_call_tool", {"name": "toolbox_echo", "arguments": {"text": "via menu"}}
            )
            assert echoed.content[0].text == "via menu"  # type: ignore[union-attr]

            seen: list[tuple[float, float | None]] = []

            async def on_progress(progress: float, total: float | None, _: str | None) -> None:
                seen.append((progress, total))

            slow = await client.call_tool(
                "archon_call_tool",
                {"name": "toolbox_slow", "arguments": {"steps": 3, "delay": 0.05}},
                progress_handler=on_progress,
            )
            assert slow.content[0].text == "done after 3 steps"  # type: ignore[union-attr]
            assert seen == [(1, 3), (2, 3), (3, 3)]

            bad = await client.call_tool(
                "archon_call_tool",
                {"name": "toolbox_echo", "arguments": {"txt": "x"}},
                raise_on_error=False,
            )
            assert bad.is_error
            assert "'text' is required" in bad.content[0].text  # type: ignore[union-attr]
            assert "unexpected argument 'txt'" in bad.content[0].text  # type: ignore[union-attr]

            # Outside the profile: not searchable, not callable either way.
            hidden = await client.call_tool(
                "archon_search_tools", {"query": "add two integers", "top_k": 50}
            )
            assert "toolbox_add" not in str(hidden.structured_content)
            for name, arguments in (
                ("toolbox_add", {"a": 1, "b": 2}),
                ("archon_call_tool", {"name": "toolbox_add", "arguments": {"a": 1, "b": 2}}),
            ):
                refused = await client.call_tool(name, arguments, raise_on_error=False)
                assert refused.is_error
                assert "nknown tool 'toolbox_add'" in refused.content[0].text  # type: ignore[union-attr]


async def test_http_paths_select_profiles_and_a_bound_token_cannot_leave_its_own(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    config = CONFIG + f'\n[service_tokens]\nops = "{OPS_TOKEN}"\n'
    with_toolbox(gateway_env, tmp_path, config)
    env = {**gateway_env, "SERVICE_AUTH_TOKEN": ADMIN_TOKEN, "ARCHON_LOG_LEVEL": "debug"}
    ops, admin = {"X-Service-Auth": OPS_TOKEN}, {"X-Service-Auth": ADMIN_TOKEN}
    with anyio.fail_after(120):
        async with running_http_gateway(env, tmp_path) as (_, url, stderr_path):
            base = url.removesuffix("/mcp")

            async def names(path: str, headers: dict[str, str]) -> list[str]:
                transport = StreamableHttpTransport(base + path, headers=headers)
                async with Client(transport) as client:
                    return [tool.name for tool in await client.list_tools()]

            full = await names("/mcp", admin)
            assert "toolbox_add" in full
            assert not set(META) & set(full)
            assert await names("/mcp/ops", admin) == META
            assert await names("/mcp", ops) == META  # the bound profile on the bare path
            assert await names("/mcp/ops", ops) == META

            async with httpx.AsyncClient(base_url=base) as web:
                initialize = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "0"},
                    },
                }
                accept = {"Accept": "application/json, text/event-stream"}
                widened = await web.post("/mcp/default", json=initialize, headers={**ops, **accept})
                assert widened.status_code == 403
                assert "bound to profile 'ops'" in widened.json()["error"]
                missing = await web.post("/mcp/nope", json=initialize, headers={**admin, **accept})
                assert missing.status_code == 404
                assert "no profile named 'nope'" in missing.json()["error"]
                anonymous = await web.post("/mcp/ops", json=initialize, headers=accept)
                assert anonymous.status_code == 401

            transport = StreamableHttpTransport(base + "/mcp/ops", headers=ops)
            async with Client(transport) as client:
                echoed = await client.call_tool(
                    "archon_call_tool", {"name": "toolbox_echo", "arguments": {"text": "hi"}}
                )
                assert echoed.content[0].text == "hi"  # type: ignore[union-attr]
                direct = await client.call_tool("toolbox_echo", {"text": "direct"})
                assert direct.content[0].text == "direct"  # type: ignore[union-attr]

            async with httpx.AsyncClient(base_url=base, headers=admin) as web:
                metrics = (await web.get("/metrics")).text
                health = (await web.get("/health")).json()
            # Counted like direct calls, under the real tool's name.
            assert counted(metrics, "toolbox_echo") == 2
            assert counted(metrics, "archon_call_tool") == 1
            assert health["profiles"]["ops"]["mode"] == "menu"
            assert health["profiles"]["ops"]["listed"] == 3
            assert health["profiles"]["ops"]["tools"] < health["profiles"]["default"]["tools"]

            audit = [
                json.loads(line.split("audit ", 1)[1])
                for line in stderr_path.read_text().splitlines()
                if "audit {" in line
            ]
            assert any(event["profile"] == "ops" for event in audit)
            assert OPS_TOKEN not in stderr_path.read_text()
