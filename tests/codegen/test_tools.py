"""The code tools through the assembled gateway and a real MCP client (in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from archon_gateway.core.health import ComponentRegistry
from archon_gateway.gateway.app import add_tool_families, build_gateway
from archon_gateway.gateway.call_pipeline import as_middleware
from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings
from archon_gateway.tools.codegen import CodegenTools
from archon_gateway.tools.codegen.mixins import catalog

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "corpus"
CODE_TOOLS = ("code_validate", "code_correct", "code_analyze", "mixin_recommend")


@pytest.fixture
def gateway(tmp_path: Path) -> FastMCP:
    return build_gateway(Settings(data_dir=tmp_path, enable_external_gateway=False))


async def call(server: FastMCP, tool: str, **arguments: Any) -> dict[str, Any]:
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None
    return result.structured_content


async def call_error(server: FastMCP, tool: str, **arguments: Any) -> str:
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def test_code_tools_are_listed_read_only_with_input_and_output_schemas(
    gateway: FastMCP,
) -> None:
    async with Client(gateway) as client:
        tools = {tool.name: tool for tool in await client.list_tools()}
    for name in CODE_TOOLS:
        tool = tools[name]
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.output_schema is not None
        assert tool.description
    validate = tools["code_validate"]
    assert set(validate.output_schema["properties"]) >= {"valid", "score", "findings"}
    assert {"code", "language", "node_kind"} <= set(validate.input_schema["properties"])
    assert set(tools["code_correct"].output_schema["properties"]) >= {
        "code",
        "diff",
        "fixed",
        "remaining",
    }


async def test_syntax_error_is_a_finding_with_line_and_column_not_a_tool_error(
    gateway: FastMCP,
) -> None:
    report = await call(gateway, "code_validate", code="def broken(:\n    pass\n")
    assert report["valid"] is False
    assert report["score"] == 0.0
    [finding] = report["findings"]
    assert finding["rule"] == "SYNTAX"
    assert (finding["line"], finding["column"]) == (1, 12)
    assert finding["severity"] == "error"

    corrected = await call(gateway, "code_correct", code="def broken(:\n    pass\n")
    assert corrected["code"] == "def broken(:\n    pass\n"
    assert corrected["changed"] is False
    assert "does not parse" in corrected["reason"]

    analysis = await call(gateway, "code_analyze", code="class A(:\n")
    assert analysis["parses"] is False
    assert analysis["syntax_error"].startswith("line 1")


async def test_input_over_one_megabyte_is_refused_with_the_limit_named(gateway: FastMCP) -> None:
    huge = "x = 1\n" * 170_000  # 1,020,000 bytes
    for tool in CODE_TOOLS:
        text = await call_error(gateway, tool, code=huge)
        assert text == "code: 1020000 bytes is over the 1000000-byte limit; send one file at a time"


async def test_large_input_under_the_limit_is_validated(gateway: FastMCP) -> None:
    code = "".join(f"def f{i}(x: int) -> int:\n    return x + {i}\n\n\n" for i in range(12_000))
    assert 500_000 < len(code) < 1_000_000
    report = await call(gateway, "code_validate", code=code[:-2])
    assert report["findings"] == []


async def test_unsupported_language_and_bad_rules_are_clear_errors(gateway: FastMCP) -> None:
    text = await call_error(gateway, "code_validate", code="x = 1\n", language="rust")
    assert text == "language: 'rust' is not supported; only 'python' is"
    text = await call_error(gateway, "code_validate", code="x = 1\n", rules=["onex; rm"])
    assert text.startswith("rules: 'onex; rm' is not a rule id or prefix")
    text = await call_error(gateway, "code_validate", code="x = 1\n", rules=["QQQ"])
    assert text.startswith("rules: ruff refused the rule selection")
    assert "QQQ" in text


async def test_rule_selection_limits_findings_and_fixes(gateway: FastMCP) -> None:
    code = (CORPUS / "bad" / "user_profile_effect.py").read_text()
    report = await call(gateway, "code_validate", code=code, rules=["ONEX004"])
    assert [f["rule"] for f in report["findings"]] == ["ONEX004"]
    report = await call(gateway, "code_validate", code=code, ignore=["ONEX", "I", "F"])
    assert report["findings"] == []

    corrected = await call(gateway, "code_correct", code=code, rules=["ONEX004"])
    assert corrected["fixed"] == ["ONEX004"]
    assert corrected["diff"].count("\n-") == 1
    assert "except Exception:  # network trouble" in corrected["code"]
    assert "class UserProfileEffect(NodeEffect):" in corrected["code"]


async def test_ruff_past_its_time_limit_is_a_clear_error() -> None:
    server = GatewayServer("codegen", middleware=[as_middleware(TranslateErrors())])
    add_tool_families(server, ComponentRegistry(), [CodegenTools(ruff_timeout=0.000001)])
    text = await call_error(server, "code_validate", code="x = 1\n")
    assert text == "ruff did not finish within 1e-06 s"


async def test_analyze_summarizes_a_node_module(gateway: FastMCP) -> None:
    code = (CORPUS / "good" / "node_user_profile_effect.py").read_text()
    analysis = await call(gateway, "code_analyze", code=code)
    assert analysis["node_kind"] == "effect"
    assert analysis["node_class"] == "NodeUserProfileEffect"
    [cls] = analysis["classes"]
    assert cls["bases"] == ["NodeEffect"]
    assert [m["name"] for m in cls["methods"]] == ["__init__", "execute_effect"]
    assert cls["methods"][1]["is_async"] is True
    assert cls["methods"][1]["returns"] == "dict[str, Any]"
    assert analysis["dependencies"] == ["httpx", "omnibase_core"]
    assert analysis["stdlib"] == ["logging", "typing"]
    assert "network" in analysis["traits"]
    assert "pure" not in analysis["traits"]


async def test_mixins_for_an_http_effect_node_explain_themselves(gateway: FastMCP) -> None:
    code = (CORPUS / "good" / "node_user_profile_effect.py").read_text()
    advice = await call(gateway, "mixin_recommend", code=code)
    ids = [r["id"] for r in advice["recommendations"]]
    assert ids[0] == "health-check"  # recommended for effects, and the code does network I/O
    assert set(ids) == {"health-check", "circuit-breaker", "metrics", "retry"}
    retry = next(r for r in advice["recommendations"] if r["id"] == "retry")
    assert retry["mixin"] == "MixinRetry"
    assert "the code does network I/O" in retry["reasons"]
    assert any(
        line.startswith("MixinCaching: not for effect nodes") for line in advice["not_recommended"]
    )
    assert advice["conflicts"] == []


async def test_mixins_from_a_description_and_incompatible_pairs_are_flagged(
    gateway: FastMCP,
) -> None:
    advice = await call(
        gateway,
        "mixin_recommend",
        description="compute node that scores documents; expensive and deterministic, cache it",
    )
    assert advice["node_kind"] == "compute"
    assert advice["recommendations"][0]["id"] == "caching"
    assert "'cache'" in advice["recommendations"][0]["reasons"][0]

    code = (
        "from omnibase_core.nodes.node_effect import NodeEffect\n\n\n"
        "class NodeFeedEffect(MixinCaching, NodeEffect):\n"
        "    async def execute_effect(self, contract: dict) -> dict:\n"
        "        await self.bus.publish('feed.updated', contract)\n"
        "        return contract\n"
    )
    advice = await call(gateway, "mixin_recommend", code=code)
    assert advice["already_present"] == ["MixinCaching"]
    assert "event-bus" in [r["id"] for r in advice["recommendations"]]
    [conflict] = advice["conflicts"]
    assert (conflict["a"], conflict["b"]) == ("MixinCaching", "MixinEventBus")
    assert "cache hit skips" in conflict["reason"]

    assert await call_error(gateway, "mixin_recommend") == "give code, description, or both"


def test_the_shipped_mixin_catalog_is_complete_and_consistent() -> None:
    shipped = catalog()
    ids = {m.id for m in shipped.mixin}
    assert {"caching", "retry", "metrics", "health-check", "event-bus"} <= ids
    for mixin in shipped.mixin:
        assert mixin.summary
        assert mixin.module.startswith("omnibase_core.mixins.")
        assert mixin.class_name.startswith("Mixin")
        assert set(mixin.recommended) <= set(mixin.kinds)
        assert mixin.avoid or len(mixin.kinds) == 4
    for conflict in shipped.conflict:
        assert {conflict.a, conflict.b} <= ids


async def test_a_pure_compute_node_gets_caching_and_dict_lookups_are_not_network(
    gateway: FastMCP,
) -> None:
    code = (CORPUS / "good" / "node_price_calculator_compute.py").read_text()
    analysis = await call(gateway, "code_analyze", code=code)
    assert "contract.get(" in code
    assert analysis["traits"] == ["pure"]
    advice = await call(gateway, "mixin_recommend", code=code)
    assert [r["id"] for r in advice["recommendations"]] == ["caching"]
    assert advice["recommendations"][0]["reasons"] == ["the code has no I/O (a pure computation)"]
    ruled_out = {line.split(":")[0] for line in advice["not_recommended"]}
    assert {"MixinRetry", "MixinEventBus", "MixinTransaction"} <= ruled_out


async def test_the_complexity_limit_can_be_set_per_call(gateway: FastMCP) -> None:
    code = (CORPUS / "bad" / "node_price_calculator_compute.py").read_text()
    default = await call(gateway, "code_validate", code=code, rules=["CPLX"])
    assert [f["message"] for f in default["findings"]] == [
        "execute_compute has cyclomatic complexity 11 (limit 10); split it"
    ]
    relaxed = await call(gateway, "code_validate", code=code, rules=["CPLX"], max_complexity=11)
    assert relaxed["findings"] == []
    text = await call_error(gateway, "code_validate", code=code, max_complexity=0)
    assert "max_complexity" in text


async def test_helper_classes_named_node_something_are_not_taken_for_nodes(
    gateway: FastMCP,
) -> None:
    code = (CORPUS / "good" / "node_user_profile_effect.py").read_text() + (
        "\n\nclass NodeProfileSettings(BaseModel):\n    timeout_s: float = 10.0\n"
    )
    base = "from omnibase_core.nodes.node_effect import NodeEffect\n"
    code = code.replace(base, base + "from pydantic import BaseModel\n")
    report = await call(gateway, "code_validate", code=code, filename="node_user_profile_effect.py")
    assert report["findings"] == []
    bare = "class NodeUserProfile:\n    pass\n"
    report = await call(gateway, "code_validate", code=bare, node_kind="effect", rules=["ONEX"])
    assert [f["rule"] for f in report["findings"]] == ["ONEX001", "ONEX003", "ONEX008"]
    assert "rename it to NodeUserProfileEffect" in report["findings"][0]["message"]
