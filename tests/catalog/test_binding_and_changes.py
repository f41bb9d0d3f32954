"""A JWT claim binds a user to a profile; the catalog follows tool changes incrementally and
searches stay consistent while tools come and go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from fastmcp import Client
from fastmcp.server.auth.providers.jwt import JWTVerifier, RSAKeyPair
from fastmcp.tools import Tool, ToolResult

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.auth.decisions import Authenticator
from archon_gateway.gateway.settings import Settings

pytestmark = pytest.mark.anyio


async def test_a_jwt_claim_binds_the_user_to_a_profile() -> None:
    keys = RSAKeyPair.generate()
    verifier = JWTVerifier(public_key=keys.public_key, issuer="https://i", audience="archon")
    authenticator = Authenticator("service_or_user", verifier=verifier, profile_claim="profile")
    bound = keys.create_token(
        subject="ana", issuer="https://i", audience="archon", additional_claims={"profile": "ops"}
    )
    free = keys.create_token(subject="bo", issuer="https://i", audience="archon")

    decided = await authenticator.decide([], [f"Bearer {bound}".encode()])
    assert (decided.accepted, decided.principal, decided.profile) == (True, "user:ana", "ops")
    unbound = await authenticator.decide([], [f"Bearer {free}".encode()])
    assert unbound.profile is None


class Echo(Tool):
    async def run(self, arguments: dict[str, Any], context: Any = None) -> ToolResult:
        return ToolResult(content="ok")


async def test_search_follows_tools_as_they_come_and_go_while_clients_search(
    tmp_path: Path,
) -> None:
    server = build_gateway(
        Settings(enable_external_gateway=False, catalog_mode="menu", data_dir=tmp_path)
    )

    async def search(client: Client[Any], query: str) -> list[str]:
        found = await client.call_tool("archon_search_tools", {"query": query, "top_k": 50})
        return [hit["name"] for hit in found.structured_content["results"]]  # type: ignore[index]

    async with Client(server) as client:
        baseline = {tool.name for tool in await server.local_provider.list_tools()}
        assert await search(client, "python code")

        async def churn() -> None:
            for round_ in range(30):
                server.add_tool(
                    Echo(
                        name=f"dyn_{round_}",
                        description=f"zebra{round_} tool",
                        parameters={"type": "object"},
                    )
                )
                await anyio.lowlevel.checkpoint()
                if round_ % 2:
                    server.local_provider.remove_tool(f"dyn_{round_}")

        async def searching() -> None:
            for _ in range(30):
                for name in await search(client, "zebra tool python code"):
                    assert name in baseline or name.startswith("dyn_")

        async with anyio.create_task_group() as group:
            group.start_soon(churn)
            group.start_soon(searching)

        found = await search(client, "zebra28 tool")
        assert found[0] == "dyn_28"
        assert "dyn_29" not in await search(client, "zebra29")
        # Every tool present at the end is found, and removed ones never are.
        kept = {f"dyn_{n}" for n in range(0, 30, 2)}
        assert kept <= set(await search(client, " ".join(f"zebra{n}" for n in range(30))))
