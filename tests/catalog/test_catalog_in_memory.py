"""Catalog mode and profiles on an in-memory gateway (native tools, real middleware)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mcp_types as mt
import pytest
from fastmcp import Client
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult

from archon_gateway.catalog.profiles import ProfileSettings, ToolOverride
from archon_gateway.catalog.search_index import CatalogEntry, SearchIndex
from archon_gateway.catalog.token_vectors import shared_vectors
from archon_gateway.catalog.validation import violations
from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings, load_settings

pytestmark = pytest.mark.anyio

META = ["archon_search_tools", "archon_describe_tool", "archon_call_tool"]


class SeenCalls(Middleware):
    """Records every tools/call the middleware chain sees: name and arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        self.calls.append((context.message.name, dict(context.message.arguments or {})))
        return await call_next(context)


def gateway(tmp_path: Path, **settings: Any) -> GatewayServer:
    values: dict[str, Any] = {"enable_external_gateway": False, "data_dir": tmp_path, **settings}
    return build_gateway(Settings(**values))


async def test_menu_lists_three_tools_and_search_describe_call_reach_a_native_tool(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, catalog_mode="menu")
    seen = SeenCalls()
    server.add_middleware(seen)
    async with Client(server) as client:
        assert [tool.name for tool in await client.list_tools()] == META

        found = await client.call_tool(
            "archon_search_tools", {"query": "check my python source for lint problems"}
        )
        results = found.structured_content["results"]  # type: ignore[index]
        assert "code_validate" in [hit["name"] for hit in results[:3]]
        hit = next(hit for hit in results if hit["name"] == "code_validate")
        assert hit["namespace"] == "codegen"
        assert hit["annotations"]["readOnlyHint"] is True
        assert hit["score"] > 0
        assert "\n" not in hit["description"]

        described = await client.call_tool("archon_describe_tool", {"name": "code_validate"})
        schema = described.structured_content["input_schema"]  # type: ignore[index]
        assert "code" in schema["properties"]
        assert "code" in schema["required"]

        direct = await client.call_tool("code_analyze", {"code": "def f():\n    return 1\n"})
        via_menu = await client.call_tool(
            "archon_call_tool",
            {"name": "code_analyze", "arguments": {"code": "def f():\n    return 1\n"}},
        )
        # The tool's own result, unchanged.
        assert via_menu.structured_content == direct.structured_content
        assert via_menu.is_error is direct.is_error is False
    # The real tool went through the same middleware as the direct call.
    analyzed = [call for call in seen.calls if call[0] == "code_analyze"]
    assert len(analyzed) == 2
    assert analyzed[0] == analyzed[1]


async def test_a_call_through_the_menu_is_counted_under_the_real_tools_name(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, catalog_mode="menu")
    async with Client(server) as client:
        await client.call_tool("archon_call_tool", {"name": "gateway_info", "arguments": {}})
        info = await client.call_tool("archon_call_tool", {"name": "gateway_info"})
    calls = info.structured_content["counts"]["tool_calls"]  # type: ignore[index]
    # gateway_info reports calls by outcome; the second call saw the first one's two
    # (archon_call_tool itself and gateway_info under its own name).
    assert calls == {"ok": 2}


async def test_bad_names_and_bad_arguments_get_one_clear_line_listing_every_problem(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, catalog_mode="menu")
    async with Client(server) as client:
        unknown = await client.call_tool(
            "archon_call_tool", {"name": "code_analyse"}, raise_on_error=False
        )
        assert unknown.is_error
        text = unknown.content[0].text  # type: ignore[union-attr]
        assert text.startswith("unknown tool 'code_analyse'; did you mean 'code_analyze'")

        secret = "hunter2-do-not-echo"
        bad = await client.call_tool(
            "archon_call_tool",
            {"name": "code_analyze", "arguments": {"path": secret, "code": 12}},
            raise_on_error=False,
        )
        assert bad.is_error
        line = bad.content[0].text  # type: ignore[union-attr]
        assert "do not match its schema (2 problems)" in line
        assert "'code' must be string" in line
        assert "unexpected argument 'path'" in line
        assert secret not in line
        assert "\n" not in line

        described = await client.call_tool(
            "archon_describe_tool", {"name": "nothing_like_it"}, raise_on_error=False
        )
        assert described.is_error


async def test_a_profile_hides_a_tool_from_list_search_describe_and_calls(
    tmp_path: Path,
) -> None:
    profiles = {
        "narrow": ProfileSettings(
            include=["code_*", "gateway_info"],
            exclude=["code_correct"],
            catalog_mode="hybrid",
            pinned=["gateway_info"],
            tools={"code_validate": ToolOverride(description="Lint my Python snippets.")},
        )
    }
    server = gateway(tmp_path, profiles=profiles, profile="narrow")
    seen = SeenCalls()
    server.add_middleware(seen)
    async with Client(server) as client:
        listed = [tool.name for tool in await client.list_tools()]
        assert listed == [*META, "gateway_info"]

        found = await client.call_tool(
            "archon_search_tools", {"query": "correct fix rename code", "top_k": 50}
        )
        names = [hit["name"] for hit in found.structured_content["results"]]  # type: ignore[index]
        assert "code_correct" not in names
        assert "pattern_search" not in names
        assert found.structured_content["searched"] == 3  # type: ignore[index]

        described = await client.call_tool("archon_describe_tool", {"name": "code_validate"})
        assert described.structured_content["description"] == "Lint my Python snippets."  # type: ignore[index]

        for name in ("code_correct", "pattern_search"):
            direct = await client.call_tool(name, {"code": "x = 1\n"}, raise_on_error=False)
            assert direct.is_error
            assert direct.content[0].text.startswith(f"Unknown tool '{name}'")  # type: ignore[union-attr]
            via_menu = await client.call_tool(
                "archon_call_tool", {"name": name, "arguments": {}}, raise_on_error=False
            )
            assert via_menu.is_error
            assert via_menu.content[0].text.startswith(f"unknown tool '{name}'")  # type: ignore[union-attr]
    # Never executed: a direct call fails at the lookup, and the menu never forwards one.
    forwarded = [name for name, _ in seen.calls]
    assert forwarded.count("code_correct") == 1
    assert forwarded.count("pattern_search") == 1


async def test_full_mode_lists_everything_and_has_no_meta_tools(tmp_path: Path) -> None:
    server = gateway(tmp_path)
    async with Client(server) as client:
        names = [tool.name for tool in await client.list_tools()]
        assert "code_validate" in names
        assert not set(META) & set(names)
        missing = await client.call_tool(
            "archon_search_tools", {"query": "x"}, raise_on_error=False
        )
        assert missing.is_error


async def test_unknown_names_in_a_profile_are_reported_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    profiles = {
        "typo": ProfileSettings(
            include=["cod_*", "gateway_info"],
            exclude=["*://secret/*"],  # a resource pattern: not a tool name to check
            pinned=["gateway_inf"],
            tools={"code_valdate": ToolOverride(title="x")},
        )
    }
    server = gateway(tmp_path, profiles=profiles)
    with caplog.at_level(logging.WARNING, logger="archon_gateway.catalog.view"):
        async with Client(server) as client:
            await client.list_tools()
    lines = [record.getMessage() for record in caplog.records]
    assert "profile 'typo': include pattern 'cod_*' matches no tool" in lines
    assert "profile 'typo': pinned tool 'gateway_inf' does not exist" in lines
    assert "profile 'typo': override for unknown tool 'code_valdate'" in lines
    assert len([line for line in lines if "profile 'typo'" in line]) == 3


async def test_gateway_info_shows_each_profiles_mode_and_tool_counts(tmp_path: Path) -> None:
    profiles = {"codegen": ProfileSettings(include=["code_*"], catalog_mode="menu")}
    server = gateway(tmp_path, profiles=profiles)
    async with Client(server) as client:
        info = (await client.call_tool("gateway_info", {})).structured_content
    assert info is not None
    assert info["profiles"]["codegen"] == {"mode": "menu", "tools": 3, "listed": 3}
    default = info["profiles"]["default"]
    assert default["mode"] == "full"
    assert default["tools"] == default["listed"] > 3


def test_profile_settings_are_checked_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "archon.toml"
    config.write_text(
        'profile = "ops"\n[profiles.ops]\ninclude = ["zen_*"]\ncatalog_mode = "menu"\n'
    )
    settings = load_settings(config)
    assert settings.default_profile == "ops"
    assert settings.profiles["ops"].include == ["zen_*"]
    with pytest.raises(SettingsInvalid, match="no profile named 'nope'"):
        load_settings(config, {"profile": "nope"})
    config.write_text('[profiles.ops]\ncatalog_mode = "menus"\n')
    with pytest.raises(SettingsInvalid, match="catalog_mode"):
        load_settings(config)
    config.write_text("[profiles.ops]\n")
    monkeypatch.setenv("ARCHON_SERVICE_TOKENS", '{"ops": "ops-token-0123456789abcdef"}')
    bound = load_settings(config)
    assert bound.service_tokens["ops"].get_secret_value() == "ops-token-0123456789abcdef"
    assert bound.effective_auth_mode == "service"
    monkeypatch.delenv("ARCHON_SERVICE_TOKENS")
    config.write_text('[service_tokens]\nops = "short"\n[profiles.ops]\n')
    with pytest.raises(SettingsInvalid) as refused:
        load_settings(config)
    assert "16 characters" in str(refused.value)
    assert "short" not in str(refused.value)


@pytest.mark.parametrize("with_vectors", [False, True], ids=["bm25", "bm25+vectors"])
def test_the_search_index_reindexes_only_what_changed(with_vectors: bool) -> None:
    def tool(name: str, description: str) -> Tool:
        return Tool(name=name, description=description, parameters={"type": "object"})

    def entry(item: Tool) -> CatalogEntry:
        return CatalogEntry(item.name, "ns", description=item.description or "")

    tools = [tool(f"t{i}", f"tool number {i} does thing {i}") for i in range(100)]
    index = SearchIndex(shared_vectors() if with_vectors else None)
    index.sync(tools, lambda t: t.name, entry)
    assert index.reindexed == 100
    tools[7] = tool("t7", "renders a mermaid diagram")
    del tools[8]
    index.sync(tools, lambda t: t.name, entry)
    assert index.reindexed == 101
    assert len(index) == 99
    [(best, _)] = index.search("mermaid diagram", 1)
    assert best.name == "t7"
    assert not [hit for hit, _ in index.search("thing 8", 99) if hit.name == "t8"]


def test_violations_name_the_rule_and_path_never_the_value() -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["a", "b"]},
            "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
        "required": ["mode", "need"],
        "additionalProperties": False,
    }
    problems = violations(schema, {"mode": "secret-value", "items": [1, -5, "x"], "extra": 1})
    assert sorted(problems) == sorted(
        [
            "'need' is required",
            "unexpected argument 'extra'",
            "'items/1' breaks 'minimum' (0)",
            "'items/2' must be integer",
            "'mode' must be one of ['a', 'b']",
        ]
    )
    assert not any("secret-value" in problem for problem in problems)
    assert violations({"type": "nonsense-type"}, {}) == []
