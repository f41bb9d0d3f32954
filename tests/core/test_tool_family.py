"""A native tool family declares its tools, lifespan, health probes and time limits; the
composition root wires them: tools listed and callable, the lifespan held while the server
runs, probes in gateway_info, limits applied by the timeout middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client
from fastmcp.tools import Tool

from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.health import ComponentStatus
from archon_gateway.core.tool_family import HealthProbe, ToolFamily
from archon_gateway.gateway.app import build_gateway, tool_families
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings

pytestmark = pytest.mark.anyio


class Sleepers(ToolFamily):
    """Two tools that never finish on their own; only `sleepy` has a time limit of its own."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def tools(self) -> Sequence[Tool]:
        return [Tool.from_function(self.sleepy), Tool.from_function(self.drowsy)]

    def time_limits(self) -> Mapping[str, float]:
        return {"sleepy": self.limit}

    async def sleepy(self) -> str:
        """Sleeps (for far longer than its limit)."""
        await anyio.sleep(30)
        return "never"

    async def drowsy(self) -> str:
        """Sleeps too, under the gateway's default limit."""
        await anyio.sleep(30)
        return "never"


class Keeper(ToolFamily):
    """Holds a resource while the server runs, and reports on it."""

    def __init__(self, status: ComponentStatus, *, critical: bool) -> None:
        self.status = status
        self.critical = critical
        self.events: list[str] = []
        self.holding = False

    def tools(self) -> Sequence[Tool]:
        return [Tool.from_function(self.holding_now)]

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        self.events.append("entered")
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            self.events.append("exited")

    def health_probes(self) -> Sequence[HealthProbe]:
        return [HealthProbe("keeper", lambda: self.status, critical=self.critical)]

    async def holding_now(self) -> bool:
        """Whether the family's lifespan is running."""
        return self.holding


def gateway(tmp_path: Path, *families: ToolFamily, **settings: Any) -> GatewayServer:
    return build_gateway(
        Settings(data_dir=tmp_path, enable_external_gateway=False, **settings),
        families=families,
    )


async def error_text(client: Client[Any], tool: str) -> str:
    result = await client.call_tool(tool, {}, raise_on_error=False)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def gateway_info(client: Client[Any]) -> dict[str, Any]:
    info = await client.call_tool("gateway_info", {})
    assert isinstance(info.structured_content, dict)
    return info.structured_content


async def test_a_familys_declared_time_limit_is_the_one_the_gateway_applies(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, Sleepers(limit=0.2), tool_timeout=0.4)
    with anyio.fail_after(10):
        async with Client(server) as client:
            assert await error_text(client, "sleepy") == "sleepy timed out after 0.2 s"
            # A tool its family gives no limit gets the gateway's default.
            assert await error_text(client, "drowsy") == "drowsy timed out after 0.4 s"


async def test_a_familys_lifespan_is_held_exactly_while_the_server_runs(tmp_path: Path) -> None:
    keeper = Keeper(ComponentStatus("ok"), critical=True)
    server = gateway(tmp_path, keeper)
    assert keeper.events == []
    with anyio.fail_after(10):
        async with Client(server) as client:
            assert keeper.events == ["entered"]
            result = await client.call_tool("holding_now", {})
            assert result.structured_content == {"result": True}
    assert keeper.events == ["entered", "exited"]
    assert not keeper.holding


async def test_a_familys_probe_shows_in_gateway_info(tmp_path: Path) -> None:
    keeper = Keeper(ComponentStatus("degraded", "half full"), critical=True)
    async with Client(gateway(tmp_path, keeper)) as client:
        info = await gateway_info(client)
    assert info["components"]["keeper"] == {"status": "degraded", "detail": "half full"}
    assert info["status"] == "degraded"


@pytest.mark.parametrize(("critical", "overall"), [(True, "down"), (False, "degraded")])
async def test_a_down_probe_counts_as_its_family_declares(
    tmp_path: Path, critical: bool, overall: str
) -> None:
    keeper = Keeper(ComponentStatus("down", "gone"), critical=critical)
    async with Client(gateway(tmp_path, keeper)) as client:
        info = await gateway_info(client)
    assert info["components"]["keeper"]["status"] == "down"
    assert info["status"] == overall


async def test_a_family_declaring_only_tools_serves_them(tmp_path: Path) -> None:
    class Plain(ToolFamily):
        def tools(self) -> Sequence[Tool]:
            return [Tool.from_function(self.plain)]

        async def plain(self, word: str) -> str:
            """Echoes a word."""
            return word

    async with Client(gateway(tmp_path, Plain())) as client:
        listed = {tool.name: tool for tool in await client.list_tools()}
        result = await client.call_tool("plain", {"word": "hi"})
    assert listed["plain"].description == "Echoes a word."
    assert listed["plain"].input_schema["required"] == ["word"]
    assert result.data == "hi"


def test_the_workflow_family_declares_the_workflow_time_limit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, enable_external_gateway=False, workflow_timeout=42)
    limits: dict[str, float] = {}
    for family in tool_families(settings, BreakerRegistry()):
        limits.update(family.time_limits())
    assert limits == {"orchestrate_pattern_workflow": 42}
