"""The assembled gateway through FastMCP's in-memory client: tools, metrics, errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastmcp import Client

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from tests.support import tool_call_samples

pytestmark = pytest.mark.anyio


def make_settings(tmp_path: Path, transport: str = "stdio") -> Settings:
    return Settings(transport=transport, data_dir=tmp_path)  # type: ignore[arg-type]


async def test_gateway_info_reports_components_and_counts_calls_by_outcome(
    tmp_path: Path,
) -> None:
    server = build_gateway(make_settings(tmp_path, "both"))
    async with Client(server) as client:
        first = await client.call_tool("gateway_info", {})
        assert first.structured_content is not None
        assert first.structured_content["transports"] == ["stdio", "http"]
        assert first.structured_content["status"] == "ok"
        assert first.structured_content["counts"]["tool_calls"] == {}

        failed = await client.call_tool("missing_tool", {}, raise_on_error=False)
        assert failed.is_error

        second = await client.call_tool("gateway_info", {})
        assert second.structured_content is not None
        assert second.structured_content["counts"]["tool_calls"] == {"ok": 1, "error": 1}


async def test_unknown_tool_names_share_one_metrics_label(tmp_path: Path) -> None:
    server = build_gateway(make_settings(tmp_path))
    async with Client(server) as client:
        for name in ("a", "b", "c"):
            await client.call_tool(name, {}, raise_on_error=False)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(build_http_app(server, "/mcp")))
    async with web:
        text = (await web.get("http://gateway/metrics")).text
    assert tool_call_samples(text) == {("_unknown_", "error"): 3.0}


async def test_tool_error_message_lists_tools_when_nothing_is_close(tmp_path: Path) -> None:
    server = build_gateway(make_settings(tmp_path))
    async with Client(server) as client:
        result = await client.call_tool("zzzz", {}, raise_on_error=False)
        names = sorted(tool.name for tool in await client.list_tools())
    text = result.content[0].text  # type: ignore[union-attr]
    listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    assert "gateway_info" in names
    assert text == (
        f"Unknown tool 'zzzz'. This gateway has {len(names)} tools: {listed} (see tools/list)."
    )
