"""The whole of MCP through the gateway: server-everything (npm) behind a real gateway
process, over the stdio and HTTP front doors, with handshake-era (2025-11-25) and 2026-07-28
clients: resources, templates, prompts, completions, logs, subscriptions, sampling,
elicitation and roots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as mt
import pytest
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult
from fastmcp.client.transports import StdioTransport

from tests.support import gateway_command, running_http_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

ERAS = ["legacy", "modern"]
DOORS = ["stdio", "http"]
LOG_LEVEL_META = "io.modelcontextprotocol/logLevel"
STATIC_URI = "demo://everything/resource/static/document/architecture.md"


@asynccontextmanager
async def front_door(door: str, env: dict[str, str], cwd: Path) -> AsyncIterator[Any]:
    """A way to reach a fresh gateway: a transport (stdio) or a URL (HTTP)."""
    if door == "stdio":
        yield StdioTransport(gateway_command(), ["serve"], env=env, cwd=str(cwd))
    else:
        async with running_http_gateway(env, cwd) as (_, url, _stderr):
            yield url


def client(target: Any, era: str, **handlers: Any) -> Client[Any]:
    return Client(target, mode="legacy" if era == "legacy" else "auto", **handlers)


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("door", DOORS)
async def test_resources_prompts_completions_sampling_and_elicitation_pass_through(
    door: str, era: str, everything: None, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    sampled: list[str] = []
    elicited = iter([ElicitResult(action="accept", content={"name": "Ada", "check": True})])

    async def sampling(messages: list[Any], params: Any, ctx: Any) -> str:
        sampled.append(messages[0].content.text)
        return "the client's own answer"

    async def elicitation(message: str, response_type: Any, params: Any, ctx: Any) -> Any:
        return next(elicited, ElicitResult(action="decline"))

    handlers = {"sampling_handler": sampling, "elicitation_handler": elicitation}
    async with (
        front_door(door, gateway_env, tmp_path) as target,
        client(target, era, **handlers) as c,
    ):
        with anyio.fail_after(60):
            await check_resources_prompts_and_completions(c)

            result = await c.call_tool(
                "everything_trigger-sampling-request", {"prompt": "hello", "maxTokens": 5}
            )
            assert "the client's own answer" in text_of(result)
            assert sampled == ["Resource trigger-sampling-request context: hello"]

            accepted = await c.call_tool("everything_trigger-elicitation-request", {})
            assert "- Name: Ada" in text_of(accepted)
            declined = await c.call_tool("everything_trigger-elicitation-request", {})
            assert "declined" in text_of(declined)


async def check_resources_prompts_and_completions(c: Client[Any]) -> None:
    resources = {str(r.uri) for r in await c.list_resources()}
    assert len(resources) == 7
    assert STATIC_URI in resources
    templates = {t.uri_template for t in await c.list_resource_templates()}
    assert templates == {
        "demo://everything/resource/dynamic/text/{resourceId}",
        "demo://everything/resource/dynamic/blob/{resourceId}",
    }
    prompts = {p.name for p in await c.list_prompts()}
    assert prompts == {
        "everything_simple-prompt",
        "everything_args-prompt",
        "everything_completable-prompt",
        "everything_resource-prompt",
    }

    static = await c.read_resource(STATIC_URI)
    assert static[0].mime_type == "text/markdown"
    assert str(static[0].uri) == STATIC_URI
    text = await c.read_resource("demo://everything/resource/dynamic/text/3")
    assert "Resource 3" in text[0].text  # type: ignore[union-attr]
    blob = await c.read_resource("demo://everything/resource/dynamic/blob/2")
    assert isinstance(blob[0], mt.BlobResourceContents)

    prompt = await c.get_prompt("everything_args-prompt", {"city": "Paris", "state": "FR"})
    assert prompt.messages[0].content.text == "What's weather in Paris, FR?"  # type: ignore[union-attr]

    by_prompt = await c.complete(
        mt.PromptReference(type="ref/prompt", name="everything_completable-prompt"),
        {"name": "department", "value": "E"},
    )
    assert by_prompt.values == ["Engineering"]
    by_template = await c.complete(
        mt.ResourceTemplateReference(
            type="ref/resource", uri="demo://everything/resource/dynamic/text/{resourceId}"
        ),
        {"name": "resourceId", "value": "1"},
    )
    assert "1" in by_template.values
