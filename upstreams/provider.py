"""Upstream tools, resources, resource templates and prompts as FastMCP components: the
pool's catalog, namespaced, forwarded over each upstream's one long-lived session. Each
forwarded request names its caller (the client's FastMCP context), so what the upstream asks
or logs meanwhile reaches that client (see callers.py)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import mcp_types as mt
from fastmcp import Context
from fastmcp.exceptions import PromptError, ResourceError
from fastmcp.prompts import Message, Prompt, PromptResult
from fastmcp.prompts.base import PromptArgument
from fastmcp.resources import Resource, ResourceContent, ResourceResult, ResourceTemplate
from fastmcp.server.dependencies import get_context
from fastmcp.server.providers.base import Provider
from fastmcp.tools.base import InputRequiredToolResult, Tool, ToolResult
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import AnyUrl, PrivateAttr, ValidationError

from archon_gateway.core import sdk_compat
from archon_gateway.core.errors import GatewayError, PeerRequestRefused, tool_errors
from archon_gateway.core.sdk_compat import FastMCPComponent, TaskConfig, VersionSpec
from archon_gateway.upstreams.callers import INVALID_REQUEST
from archon_gateway.upstreams.catalog import UpstreamTool
from archon_gateway.upstreams.client_requests import (
    REQUEST_TYPES,
    log_fields,
    may_be_asked,
    typed_request,
    why_not,
)
from archon_gateway.upstreams.connection import ProgressCallback
from archon_gateway.upstreams.exchanges import Exchange, Exchanges
from archon_gateway.upstreams.naming import namespaced_uri, split_uri
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.supervisor import Upstream

_C = TypeVar("_C", bound=FastMCPComponent)


class ContextCaller:
    """The client behind one FastMCP request context, as an upstream's caller."""

    def __init__(self, ctx: Context) -> None:
        # Taken now: the context reads them from the request's task, and the upstream's
        # requests are answered from another task.
        session = ctx.session
        self._session = session
        self._request_id = ctx.request_id
        request = ctx.request_context
        token = request.meta.get("progressToken") if request is not None and request.meta else None
        self.progress_token: str | int | None = token if isinstance(token, str | int) else None
        self.client: object = sdk_compat.session_connection(session) or session
        self.capabilities = session.client_capabilities
        self.modern = session.protocol_version in MODERN_PROTOCOL_VERSIONS

    def can(self, method: str, params: dict[str, Any]) -> str | None:
        refusal = why_not(self.capabilities, method, params)
        if refusal is None and self.modern:
            return (
                "the calling client speaks MCP 2026-07-28, which takes such requests only "
                "as input_required answers to a tool call"
            )
        return refusal

    @property
    def may_be_asked(self) -> bool:
        """Whether it declared anything an upstream may ask of it."""
        return may_be_asked(self.capabilities)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        result_type = REQUEST_TYPES[method][1]
        request = typed_request(method, params)
        try:
            result = await self._session.send_request(
                request,
                result_type,
                metadata=ServerMessageMetadata(related_request_id=self._request_id),
            )
        except MCPError as exc:
            raise PeerRequestRefused(
                exc.code, f"the client refused {method}: {exc.message}"
            ) from exc
        except ValidationError as exc:
            raise PeerRequestRefused(
                INVALID_REQUEST, f"the client's answer was invalid: {exc}"
            ) from exc
        dumped: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return dumped

    async def log(self, upstream: str, params: dict[str, Any]) -> None:
        level, data, name = log_fields(upstream, params)
        await self._session.send_log_message(level, data, name, related_request_id=self._request_id)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        if self.progress_token is not None:
            await self._session.send_progress_notification(
                self.progress_token,
                progress,
                total,
                message,
                related_request_id=str(self._request_id),
            )


class ExchangeCaller:
    """A 2026-07-28 client as an upstream's caller: what the upstream asks is put to the
    client between rounds of its tool call (see exchanges.py)."""

    def __init__(self, exchange: Exchange, first: ContextCaller) -> None:
        self.client: object = exchange
        self._exchange = exchange
        self._capabilities = first.capabilities
        self.round: ContextCaller | None = first  # the client's request now served, if any

    def can(self, method: str, params: dict[str, Any]) -> str | None:
        return why_not(self._capabilities, method, params)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        typed_request(method, params)  # refuse malformed questions before the client sees them
        return await self._exchange.ask(method, params)

    async def log(self, upstream: str, params: dict[str, Any]) -> None:
        if self.round is not None:
            await self.round.log(upstream, params)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        if self.round is not None:
            await self.round.progress(progress, total, message)


def _caller(ctx: Context | None) -> ContextCaller | None:
    try:
        return ContextCaller(ctx or get_context())
    except RuntimeError:  # no request in flight (an internal call): nobody to ask
        return None


class ProxiedTool(Tool):
    """An upstream tool. Arguments go through untouched, so the upstream's own validation
    errors come back intact; the result is relayed as the upstream sent it."""

    task_config: TaskConfig = TaskConfig(mode="forbidden")
    _upstream: Upstream = PrivateAttr()
    _tool: UpstreamTool = PrivateAttr()
    _exchanges: Exchanges | None = PrivateAttr(default=None)

    @classmethod
    def for_upstream(
        cls, upstream: Upstream, tool: UpstreamTool, exchanges: Exchanges | None = None
    ) -> ProxiedTool:
        definition = mt.Tool.model_validate(tool.definition)
        proxied = cls(
            name=tool.exposed_name,
            title=definition.title,
            description=definition.description,
            parameters=definition.input_schema,
            output_schema=definition.output_schema,
            annotations=definition.annotations,
            icons=definition.icons,
            tags={upstream.name},
        )
        proxied._upstream, proxied._tool, proxied._exchanges = upstream, tool, exchanges
        return proxied

    async def run(self, arguments: dict[str, Any], context: Context | None = None) -> ToolResult:
        ctx = context or get_context()
        caller = _caller(ctx)
        exchanges = self._exchanges
        if caller is not None and caller.modern and caller.may_be_asked and exchanges:
            return await self._run_in_rounds(arguments, ctx, caller, exchanges)
        with tool_errors():
            raw = await self._upstream.call(self._tool, arguments, _progress_relay(ctx), caller)
        return ToolResult.from_mcp_result(mt.CallToolResult.model_validate(raw))

    async def _run_in_rounds(
        self, arguments: dict[str, Any], ctx: Context, first: ContextCaller, exchanges: Exchanges
    ) -> ToolResult:
        """A 2026-07-28 client that may be asked things: the call runs in an exchange, and
        each of the client's rounds ends with either the result or the next questions."""
        exchange = exchanges.find(ctx.request_state)
        if exchange is not None:
            cast(ExchangeCaller, exchange.caller).round = first
            answers = ctx.input_responses or {}
            exchange.deliver(
                {
                    key: answer.model_dump(by_alias=True, mode="json", exclude_none=True)
                    for key, answer in answers.items()
                }
            )
        else:

            async def call(started: Exchange) -> dict[str, Any]:
                caller = ExchangeCaller(started, first)
                started.caller = caller
                return await self._upstream.call(self._tool, arguments, caller.progress, caller)

            exchange = exchanges.start(call)
        try:
            asks = await exchange.next_round()
        except BaseException:
            exchange.abandon()  # the client cancelled, or its time limit struck
            raise
        finally:
            if isinstance(exchange.caller, ExchangeCaller):
                exchange.caller.round = None
        if asks is None:
            exchange.collected.set()
            with tool_errors():
                if exchange.failure is not None:
                    raise exchange.failure
                assert exchange.outcome is not None
                return ToolResult.from_mcp_result(
                    mt.CallToolResult.model_validate(exchange.outcome)
                )
        exchanges.park(exchange)
        return InputRequiredToolResult(
            mt.InputRequiredResult(
                input_requests={key: typed_request(a.method, a.params) for key, a in asks.items()},
                request_state=exchange.token,
            )
        )


def _contents(upstream: str, uri: str, raw: dict[str, Any]) -> ResourceResult:
    """A resources/read result as FastMCP's ResourceResult (blobs decoded once; they are
    already bounded by the upstream's max_message_bytes)."""
    items = raw.get("contents")
    if not isinstance(items, list) or not items:
        raise ResourceError(f"upstream '{upstream}' returned no contents for {uri}")
    contents: list[ResourceContent] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        mime = item.get("mimeType")
        meta = item.get("_meta")
        if isinstance(item.get("text"), str):
            contents.append(ResourceContent(item["text"], mime_type=mime, meta=meta))
        elif isinstance(item.get("blob"), str):
            try:
                data = base64.b64decode(item["blob"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ResourceError(f"upstream '{upstream}' sent an invalid blob") from exc
            contents.append(ResourceContent(data, mime_type=mime, meta=meta))
    return ResourceResult(contents=contents)


async def _read(upstream: Upstream, uri: str, exposed: str) -> ResourceResult:
    try:
        raw = await upstream.request("resources/read", {"uri": uri}, _caller(None))
    except GatewayError as exc:
        raise ResourceError(f"reading {exposed}: {exc}") from exc
    return _contents(upstream.name, exposed, raw)


class ProxiedResource(Resource):
    """An upstream resource under its namespaced URI."""

    task_config: TaskConfig = TaskConfig(mode="forbidden")
    _upstream: Upstream = PrivateAttr()
    _uri: str = PrivateAttr()

    @classmethod
    def for_upstream(
        cls, upstream: Upstream, uri: str, definition: dict[str, Any]
    ) -> ProxiedResource:
        raw = mt.Resource.model_validate(definition)
        resource = cls(
            uri=AnyUrl(namespaced_uri(upstream.name, uri)),
            name=raw.name,
            title=raw.title,
            description=raw.description,
            mime_type=raw.mime_type or "text/plain",
            icons=raw.icons,
            annotations=raw.annotations,
            tags={upstream.name},
        )
        resource._upstream, resource._uri = upstream, uri
        return resource

    async def _read(self) -> ResourceResult:
        return await _read(self._upstream, self._uri, str(self.uri))


class ProxiedTemplate(ResourceTemplate):
    """An upstream resource template under its namespaced URI template; a read of a URI it
    matches goes to the upstream with the namespace taken off."""

    task_config: TaskConfig = TaskConfig(mode="forbidden")
    _upstream: Upstream = PrivateAttr()

    @classmethod
    def for_upstream(cls, upstream: Upstream, definition: dict[str, Any]) -> ProxiedTemplate:
        raw = mt.ResourceTemplate.model_validate(definition)
        template = cls(
            uri_template=namespaced_uri(upstream.name, raw.uri_template),
            name=raw.name,
            title=raw.title,
            description=raw.description,
            mime_type=raw.mime_type or "text/plain",
            icons=raw.icons,
            annotations=raw.annotations,
            parameters={},
            tags={upstream.name},
        )
        template._upstream = upstream
        return template

    async def _read(self, uri: str, params: dict[str, Any]) -> ResourceResult:
        split = split_uri(uri)  # it matched our namespaced template, so it is one
        return await _read(self._upstream, split[1] if split else uri, uri)


class ProxiedPrompt(Prompt):
    """An upstream prompt as `{upstream}_{prompt}`; arguments go through untouched."""

    task_config: TaskConfig = TaskConfig(mode="forbidden")
    _upstream: Upstream = PrivateAttr()
    _prompt: str = PrivateAttr()

    @classmethod
    def for_upstream(
        cls, upstream: Upstream, exposed: str, definition: dict[str, Any]
    ) -> ProxiedPrompt:
        raw = mt.Prompt.model_validate(definition)
        prompt = cls(
            name=exposed,
            title=raw.title,
            description=raw.description,
            arguments=[
                PromptArgument(
                    name=arg.name,
                    title=arg.title,
                    description=arg.description,
                    required=bool(arg.required),
                )
                for arg in raw.arguments or []
            ],
            icons=raw.icons,
            tags={upstream.name},
        )
        prompt._upstream, prompt._prompt = upstream, raw.name
        return prompt

    async def _render(self, arguments: dict[str, Any] | None = None) -> PromptResult:
        params: dict[str, Any] = {"name": self._prompt}
        if arguments:
            params["arguments"] = {key: str(value) for key, value in arguments.items()}
        try:
            raw = await self._upstream.request("prompts/get", params, _caller(None))
            result = mt.GetPromptResult.model_validate(raw)
        except GatewayError as exc:
            raise PromptError(f"{self.name}: {exc}") from exc
        except ValidationError as exc:
            raise PromptError(f"{self.name}: upstream sent an invalid prompt") from exc
        messages = [Message(content=m.content, role=m.role) for m in result.messages]
        return PromptResult(messages=messages, description=result.description)


def _progress_relay(ctx: Context) -> ProgressCallback | None:
    """Forward upstream progress only when the caller asked for progress (sent a token)."""
    request = ctx.request_context
    meta = request.meta if request is not None else None
    if not meta or meta.get("progressToken") is None:
        return None

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await ctx.report_progress(progress, total, message)

    return relay


class UpstreamProvider(Provider):
    """Serves the pool's tools. The pool itself is a server resource (see gateway/mcp_server.py)."""

    def __init__(self, pool: UpstreamPool, exchanges: Exchanges | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.exchanges = exchanges
        self._tools: dict[tuple[str, str], ProxiedTool] = {}
        # Components by (upstream, exposed key), rebuilt when the definition changes.
        self._built: dict[tuple[str, str, str], tuple[dict[str, Any], FastMCPComponent]] = {}

    def _component(self, upstream: Upstream, tool: UpstreamTool) -> ProxiedTool:
        key = (upstream.name, tool.exposed_name)
        cached = self._tools.get(key)
        if cached is None or cached._tool is not tool:
            cached = self._tools[key] = ProxiedTool.for_upstream(upstream, tool, self.exchanges)
        return cached

    async def get_tasks(self) -> Sequence[FastMCPComponent]:
        # FastMCP asks every provider for background-task components while its lifespan
        # starts; the default lists our tools, which would hold the front door until every
        # upstream is ready. Proxied tools never run as background tasks.
        return []

    async def _list_tools(self) -> Sequence[Tool]:
        return [self._component(upstream, tool) for upstream, tool in await self.pool.tools()]

    async def _get_tool(self, name: str, version: VersionSpec | None = None) -> Tool | None:
        found = await self.pool.find(name)
        return self._component(*found) if found else None

    def _resource(self, upstream: Upstream, exposed: str) -> ProxiedResource | None:
        definition = upstream.passthrough.resources.get(exposed)
        if definition is None:
            return None
        return self._build(
            ("resource", upstream.name, exposed),
            definition,
            lambda: ProxiedResource.for_upstream(upstream, str(definition["uri"]), definition),
        )

    def _template(self, upstream: Upstream, exposed: str) -> ProxiedTemplate | None:
        definition = upstream.passthrough.templates.get(exposed)
        if definition is None:
            return None
        return self._build(
            ("template", upstream.name, exposed),
            definition,
            lambda: ProxiedTemplate.for_upstream(upstream, definition),
        )

    def _prompt(self, upstream: Upstream, exposed: str) -> ProxiedPrompt | None:
        definition = upstream.passthrough.prompts.get(exposed)
        if definition is None:
            return None
        return self._build(
            ("prompt", upstream.name, exposed),
            definition,
            lambda: ProxiedPrompt.for_upstream(upstream, exposed, definition),
        )

    def _build(
        self, key: tuple[str, str, str], definition: dict[str, Any], make: Callable[[], _C]
    ) -> _C:
        cached = self._built.get(key)
        if cached is None or cached[0] is not definition:
            cached = self._built[key] = (definition, make())
        return cast(_C, cached[1])

    async def _list_resources(self) -> Sequence[Resource]:
        upstreams = await self.pool.passthrough()
        found = (
            self._resource(u, exposed) for u in upstreams for exposed in u.passthrough.resources
        )
        return [resource for resource in found if resource is not None]

    async def _get_resource(self, uri: str, version: VersionSpec | None = None) -> Resource | None:
        owner = self.pool.owner_of_uri(uri)
        if owner is None:
            return None
        upstream, own_uri = owner
        await self.pool.listed_once(upstream)
        listed = self._resource(upstream, uri)
        if listed is not None or self._matching_template(upstream, uri) is not None:
            return listed
        # Servers may serve URIs they do not list (links their tools return): the
        # namespace names the upstream, which answers for itself.
        return ProxiedResource.for_upstream(upstream, own_uri, {"uri": own_uri, "name": own_uri})

    async def _list_resource_templates(self) -> Sequence[ResourceTemplate]:
        upstreams = await self.pool.passthrough()
        found = (
            self._template(u, exposed) for u in upstreams for exposed in u.passthrough.templates
        )
        return [template for template in found if template is not None]

    async def _get_resource_template(
        self, uri: str, version: VersionSpec | None = None
    ) -> ResourceTemplate | None:
        owner = self.pool.owner_of_uri(uri)
        if owner is None:
            return None
        await self.pool.listed_once(owner[0])
        return self._matching_template(owner[0], uri)

    def _matching_template(self, upstream: Upstream, uri: str) -> ProxiedTemplate | None:
        for exposed in upstream.passthrough.templates:
            template = self._template(upstream, exposed)
            if template is not None and template.matches(uri) is not None:
                return template
        return None

    async def _list_prompts(self) -> Sequence[Prompt]:
        upstreams = await self.pool.passthrough()
        found = (self._prompt(u, exposed) for u in upstreams for exposed in u.passthrough.prompts)
        return [prompt for prompt in found if prompt is not None]

    async def _get_prompt(self, name: str, version: VersionSpec | None = None) -> Prompt | None:
        owner = self.pool.owner_of_prompt(name)
        if owner is None:
            await self.pool.passthrough()
            owner = self.pool.owner_of_prompt(name)
        return self._prompt(owner[0], name) if owner is not None else None

    async def complete(
        self,
        ref: mt.PromptReference | mt.ResourceTemplateReference,
        argument: mt.CompletionArgument,
        context: mt.CompletionContext | None,
    ) -> mt.Completion | None:
        """`completion/complete` for an upstream prompt or resource template, asked of the
        upstream that owns it (None, an empty completion, for anything else)."""
        if isinstance(ref, mt.PromptReference):
            owner = self.pool.owner_of_prompt(ref.name)
            own_ref: dict[str, Any] = {"type": "ref/prompt", "name": owner[1] if owner else ""}
        else:
            owner = self.pool.owner_of_uri(ref.uri)
            own_ref = {"type": "ref/resource", "uri": owner[1] if owner else ""}
        if (
            owner is None
            or not (session := owner[0].live_session())
            or not session.offers("completions")
        ):
            return None
        params: dict[str, Any] = {
            "ref": own_ref,
            "argument": argument.model_dump(by_alias=True, exclude_none=True),
        }
        if context is not None:
            params["context"] = context.model_dump(by_alias=True, exclude_none=True)
        try:
            raw = await owner[0].request("completion/complete", params, _caller(None))
            return mt.CompleteResult.model_validate(raw).completion
        except (GatewayError, ValidationError):
            return None  # a completion is a hint: no candidates rather than an error
