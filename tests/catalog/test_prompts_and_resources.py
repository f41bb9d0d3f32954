"""Prompts, resources and resource templates in the catalog: searchable and describable
from the menu, and hidden by a profile like tools (in-memory gateway; proxied ones come
through the same catalog)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError
from mcp.shared.exceptions import MCPError

from archon_gateway.catalog.profiles import ProfileSettings
from archon_gateway.gateway.mcp_server import GatewayServer
from tests.catalog.test_catalog_in_memory import gateway

pytestmark = pytest.mark.anyio

RUNBOOK = "archon://docs/runbook"
TICKET = "archon://tickets/{ticket_id}"


def with_prompts_and_resources(server: GatewayServer) -> GatewayServer:
    @server.prompt(name="release_notes")
    def release_notes(version: str, highlights: str = "") -> str:
        """Draft the release notes for a version from its merged changes."""
        return f"Write release notes for {version}. {highlights}"

    @server.resource(RUNBOOK, name="runbook", mime_type="text/markdown")
    def runbook() -> str:
        """How to bring a crashed upstream server back."""
        return "# Restart\n"

    @server.resource(TICKET, name="ticket")
    def ticket(ticket_id: str) -> str:
        """One support ticket with its conversation."""
        return f"ticket {ticket_id}"

    return server


async def search(client: Client[Any], query: str, **more: Any) -> list[dict[str, Any]]:
    found = await client.call_tool("archon_search_tools", {"query": query, **more})
    return found.structured_content["results"]  # type: ignore[index,no-any-return]


async def test_menu_search_finds_prompts_and_resources_and_describe_explains_them(
    tmp_path: Path,
) -> None:
    server = with_prompts_and_resources(gateway(tmp_path, catalog_mode="menu"))
    async with Client(server) as client:
        prompt = (await search(client, "write the notes for a new release"))[0]
        assert (prompt["name"], prompt["kind"]) == ("release_notes", "prompt")
        resource = (await search(client, "restart a crashed server", kind="resource"))[0]
        assert (resource["name"], resource["kind"]) == (RUNBOOK, "resource")
        template = (await search(client, "support ticket", kind="resource_template"))[0]
        assert (template["name"], template["kind"]) == (TICKET, "resource_template")
        tools_only = await search(client, "write the notes for a new release", kind="tool")
        assert {hit["kind"] for hit in tools_only} == {"tool"}

        described = await client.call_tool("archon_describe_tool", {"name": "release_notes"})
        about = described.structured_content
        assert about["kind"] == "prompt"  # type: ignore[index]
        assert about["input_schema"]["required"] == ["version"]  # type: ignore[index]
        assert set(about["input_schema"]["properties"]) == {"version", "highlights"}  # type: ignore[index]
        described = await client.call_tool("archon_describe_tool", {"name": RUNBOOK})
        assert described.structured_content["kind"] == "resource"  # type: ignore[index]
        assert described.structured_content["mime_type"] == "text/markdown"  # type: ignore[index]
        described = await client.call_tool("archon_describe_tool", {"name": TICKET})
        assert "ticket_id" in described.structured_content["input_schema"]["properties"]  # type: ignore[index]

        # The menu replaces the tool listing only: prompts and resources are read as usual.
        assert [p.name for p in await client.list_prompts()] == ["release_notes"]
        assert "Restart" in str((await client.read_resource(RUNBOOK))[0])


async def test_a_profile_hides_prompts_and_resources_from_lists_search_describe_and_reads(
    tmp_path: Path,
) -> None:
    hidden = ProfileSettings(exclude=["release_*", "*://docs/*", "archon://tickets/*"])
    server = with_prompts_and_resources(
        gateway(tmp_path, catalog_mode="menu", profiles={"default": hidden})
    )
    async with Client(server) as client:
        assert await client.list_prompts() == []
        assert await client.list_resources() == []
        assert await client.list_resource_templates() == []
        for kind in ("prompt", "resource", "resource_template"):
            assert await search(client, "release notes runbook ticket", kind=kind) == []
        with pytest.raises(ToolError, match="unknown tool, prompt or resource"):
            await client.call_tool("archon_describe_tool", {"name": RUNBOOK})
        with pytest.raises(MCPError, match="Unknown prompt: 'release_notes'"):
            await client.get_prompt("release_notes", {"version": "1.0"})
        with pytest.raises(MCPError, match="Resource not found"):
            await client.read_resource(RUNBOOK)
        with pytest.raises(MCPError, match="Resource not found"):
            await client.read_resource("archon://tickets/42")
