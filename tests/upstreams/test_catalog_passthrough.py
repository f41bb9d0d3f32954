"""Catalog mode over proxied prompts and resources: server-everything (npm) behind a real
gateway in `menu` mode; its prompts and resources are searchable and describable like tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from tests.support import running_http_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

STATIC_URI = "demo://everything/resource/static/document/architecture.md"


async def search(client: Client[Any], query: str, kind: str) -> list[dict[str, Any]]:
    found = await client.call_tool("archon_search_tools", {"query": query, "kind": kind})
    assert found.structured_content is not None
    results: list[dict[str, Any]] = found.structured_content["results"]
    return results


async def test_menu_mode_finds_and_describes_proxied_prompts_and_resources(
    everything: None, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**gateway_env, "ARCHON_CATALOG_MODE": "menu"}
    async with (
        running_http_gateway(env, tmp_path) as (_, url, _stderr),
        Client(url) as client,
    ):
        with anyio.fail_after(60):
            listed = {tool.name for tool in await client.list_tools()}
            assert listed == {"archon_search_tools", "archon_describe_tool", "archon_call_tool"}
            prompts = await search(client, "weather prompt taking a city and state", "prompt")
            assert prompts[0]["name"] == "everything_args-prompt"
            assert prompts[0]["namespace"] == "everything"
            resources = await search(client, "architecture document", "resource")
            assert resources[0]["name"] == STATIC_URI
            described = await client.call_tool(
                "archon_describe_tool", {"name": "everything_args-prompt"}
            )
            assert described.structured_content is not None
            assert described.structured_content["kind"] == "prompt"
            assert "city" in str(described.structured_content)
