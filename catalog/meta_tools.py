"""The three meta-tools a `menu` or `hybrid` client sees instead of the whole catalog.

`archon_call_tool` re-enters the server's own call path (`server.call_tool`, middleware
included), so the real tool gets exactly the auth, breakers, time limit, metrics label and
audit of a direct call, and the caller's profile is checked again on the way in.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast

from fastmcp import Context
from fastmcp.prompts import Prompt
from fastmcp.resources import ResourceTemplate
from fastmcp.tools import Tool, ToolResult
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from archon_gateway.catalog.validation import violations
from archon_gateway.catalog.view import (
    META_TOOLS,
    CatalogView,
    Other,
    catalog_entry,
    component_entry,
    keys_of,
)
from archon_gateway.core.errors import InvalidArgument, NotFound, tool_errors

MAX_TOP_K = 50
ONE_LINE = 160


Kind = Literal["tool", "prompt", "resource", "resource_template"]


class SearchHit(BaseModel):
    name: str = Field(description="a tool's or prompt's name, a resource's URI (template)")
    kind: Kind = "tool"
    description: str = Field(description="first line of its description")
    namespace: str
    annotations: dict[str, Any] = {}
    score: float


class SearchResults(BaseModel):
    results: list[SearchHit]
    searched: int = Field(description="tools, prompts and resources searched")


class ToolDescription(BaseModel):
    name: str
    kind: Kind = "tool"
    title: str | None = None
    description: str = ""
    namespace: str
    input_schema: dict[str, Any] = Field(
        description="a tool's arguments; a prompt's arguments or a template's parameters "
        "as a JSON schema; a resource has none"
    )
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] = {}
    mime_type: str | None = None


def meta_tools(view: CatalogView) -> Mapping[str, Tool]:
    async def archon_search_tools(
        query: Annotated[str, Field(min_length=1, max_length=1000, description="what to do")],
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] = 5,
        namespace: Annotated[str | None, Field(max_length=64)] = None,
        kind: Kind | None = None,
        ctx: Context = None,  # type: ignore[assignment]  # injected by FastMCP
    ) -> SearchResults:
        """Find tools (or prompts, resources) for a task, best first. Then
        archon_describe_tool for a schema, archon_call_tool to run a tool. `namespace`
        limits the search to one upstream, `kind` to one kind."""
        profile, tools = await view.tools_in_profile(ctx)
        index = await view.index_for(profile, [*tools, *await view.others_in_profile(ctx)])
        hits = [
            SearchHit(
                name=entry.name,
                kind=cast(Kind, entry.kind),
                description=_one_line(entry.description),
                namespace=entry.namespace,
                annotations=dict(entry.annotations),
                score=round(score, 3),
            )
            for entry, score in index.search(query, top_k, namespace, kind)
        ]
        return SearchResults(results=hits, searched=len(index))

    async def archon_describe_tool(
        name: Annotated[str, Field(min_length=1, max_length=200)],
        ctx: Context = None,  # type: ignore[assignment]
    ) -> ToolDescription:
        """A tool's full input and output schema and annotations (or a prompt's, a
        resource's, by name or URI)."""
        with tool_errors():
            try:
                tool = await _find(view, ctx, name)
            except NotFound as missing:
                other = await _find_other(view, ctx, name)
                if other is None:
                    raise NotFound(
                        str(missing).replace("unknown tool", "unknown tool, prompt or resource")
                    ) from None
                return _describe_other(view, other)
        entry = catalog_entry(tool, view.namespace_of(tool.name))
        return ToolDescription(
            name=tool.name,
            title=entry.title or None,
            description=tool.description or "",
            namespace=entry.namespace,
            input_schema=tool.parameters,
            output_schema=tool.output_schema,
            annotations=dict(entry.annotations),
        )

    async def archon_call_tool(
        name: Annotated[str, Field(min_length=1, max_length=200)],
        arguments: dict[str, Any] | None = None,
        ctx: Context = None,  # type: ignore[assignment]
    ) -> ToolResult:
        """Call a tool found with archon_search_tools; returns that tool's own result."""
        given = arguments or {}
        with tool_errors():
            tool = await _find(view, ctx, name)
            problems = violations(tool.parameters, given)
            if problems:
                count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
                raise InvalidArgument(
                    f"arguments for '{name}' do not match its schema ({count}): "
                    + "; ".join(problems)
                    + " (see archon_describe_tool)"
                )
        # Not inside tool_errors: the called tool's own errors come back as they are.
        return await ctx.fastmcp.call_tool(name, given)

    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    tools = {
        # No output schemas: they would cost the menu's listing more than its three tools;
        # the results still come back as structured content (and as JSON text).
        "archon_search_tools": Tool.from_function(
            archon_search_tools,
            annotations=read_only.model_copy(update={"title": "Search tools"}),
            output_schema=None,
        ),
        "archon_describe_tool": Tool.from_function(
            archon_describe_tool,
            annotations=read_only.model_copy(update={"title": "Describe a tool"}),
            output_schema=None,
        ),
        "archon_call_tool": Tool.from_function(
            archon_call_tool, annotations=ToolAnnotations(title="Call a tool")
        ),
    }
    assert tuple(tools) == META_TOOLS
    return tools


async def _find(view: CatalogView, ctx: Context, name: str) -> Tool:
    _, tools = await view.tools_in_profile(ctx)
    for tool in tools:
        if tool.name == name:
            return tool
    close = difflib.get_close_matches(name, [tool.name for tool in tools], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise NotFound(f"unknown tool '{name}'{hint} (find tools with archon_search_tools)")


async def _find_other(view: CatalogView, ctx: Context, name: str) -> Other | None:
    for component in await view.others_in_profile(ctx):
        if keys_of(component)[0] == name:
            return component
    return None


def _describe_other(view: CatalogView, component: Other) -> ToolDescription:
    entry = component_entry(component, view.namespace_of_other(component))
    if isinstance(component, Prompt):
        arguments = component.arguments or []
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                arg.name: {"type": "string", "description": arg.description or ""}
                for arg in arguments
            },
            "required": [arg.name for arg in arguments if arg.required],
        }
    elif isinstance(component, ResourceTemplate):
        schema = dict(component.parameters or {"type": "object", "properties": {}})
    else:
        schema = {}
    return ToolDescription(
        name=entry.name,
        kind=cast(Kind, entry.kind),
        title=component.title,
        description=component.description or "",
        namespace=entry.namespace,
        input_schema=schema,
        annotations=dict(entry.annotations),
        mime_type=getattr(component, "mime_type", None),
    )


def _one_line(text: str) -> str:
    """The first sentence (descriptions are often hard-wrapped), at most ONE_LINE chars."""
    flat = " ".join(text.split())
    line = flat.split(". ", 1)[0]
    return line if len(line) <= ONE_LINE else line[: ONE_LINE - 3].rstrip() + "..."
