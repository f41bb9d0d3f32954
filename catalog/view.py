"""The caller's view of the catalog: a FastMCP transform that applies the caller's profile
to every tools/list and every tool lookup (so to direct calls too).

The profile comes from the HTTP request (`http_profiles` puts its name in the request
state) or, without one (stdio, in-memory clients), is the gateway's default profile. A tool
outside the profile is absent from listings, from search, and from lookups: a direct call
gets FastMCP's "unknown tool", before any middleware could run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

import anyio
from fastmcp import Context
from fastmcp.prompts import Prompt
from fastmcp.resources import Resource, ResourceTemplate
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.transforms import (
    GetPromptNext,
    GetResourceNext,
    GetResourceTemplateNext,
    GetToolNext,
)
from fastmcp.server.transforms.catalog import CatalogTransform
from fastmcp.tools import Tool

from archon_gateway.catalog.profiles import Profile
from archon_gateway.catalog.search_index import CatalogEntry, SearchIndex
from archon_gateway.catalog.token_vectors import shared_vectors
from archon_gateway.core.sdk_compat import VersionSpec

log = logging.getLogger(__name__)

PROFILE_STATE = "archon_profile"  # request state key set by http_profiles
META_TOOLS = ("archon_search_tools", "archon_describe_tool", "archon_call_tool")

NamespaceOf = Callable[[str], str]


def requested_profile() -> str | None:
    """The profile the current HTTP request selected, or None outside HTTP."""
    try:
        request = get_http_request()
    except RuntimeError:
        return None
    state = request.scope.get("state") or {}
    name = state.get(PROFILE_STATE)
    return name if isinstance(name, str) else None


def catalog_entry(tool: Tool, namespace: str) -> CatalogEntry:
    properties = (tool.parameters or {}).get("properties") or {}
    return CatalogEntry(
        name=tool.name,
        namespace=namespace,
        title=tool.title or (tool.annotations.title if tool.annotations else None) or "",
        description=tool.description or "",
        parameters={
            str(key): str(info.get("description", "")) if isinstance(info, dict) else ""
            for key, info in properties.items()
        },
        annotations=(
            tool.annotations.model_dump(by_alias=True, exclude_none=True)
            if tool.annotations
            else {}
        ),
    )


# What search and describe reach besides tools.
Other = Prompt | Resource | ResourceTemplate
Component = Tool | Other
KINDS = ("tool", "prompt", "resource", "resource_template")


def kind_of(component: Component) -> str:
    if isinstance(component, Prompt):
        return "prompt"
    if isinstance(component, Resource):
        return "resource"
    if isinstance(component, ResourceTemplate):
        return "resource_template"
    return "tool"


def keys_of(component: Other) -> tuple[str, ...]:
    """What a profile's globs are matched against, the address first: a prompt's
    (namespaced) name; a resource's URI and name; a template's URI template and name."""
    if isinstance(component, Resource):
        return str(component.uri), component.name
    if isinstance(component, ResourceTemplate):
        return component.uri_template, component.name
    return (component.name,)


def component_entry(component: Other, namespace: str) -> CatalogEntry:
    """A prompt, resource or template as a search entry, named by its address (name, URI,
    URI template); prompt arguments and template parameters are its parameters."""
    kind = kind_of(component)
    if isinstance(component, Prompt):
        parameters = {arg.name: arg.description or "" for arg in component.arguments or []}
    else:
        schema = component.parameters if isinstance(component, ResourceTemplate) else {}
        parameters = {
            str(key): str(info.get("description", "")) if isinstance(info, dict) else ""
            for key, info in ((schema or {}).get("properties") or {}).items()
        }
    # A resource's name is words to find it by; its URI is what reads it.
    words = [component.title or "", "" if kind == "prompt" else component.name]
    annotations = getattr(component, "annotations", None)
    return CatalogEntry(
        name=keys_of(component)[0],
        namespace=namespace,
        kind=kind,
        title=" ".join(word for word in words if word),
        description=component.description or "",
        parameters=parameters,
        annotations=annotations.model_dump(by_alias=True, exclude_none=True) if annotations else {},
    )


def search_key(component: Component) -> str:
    """Unique across kinds (a prompt may share a tool's name)."""
    if isinstance(component, Tool):
        return component.name
    return f"{kind_of(component)}\x00{keys_of(component)[0]}"


class CatalogView(CatalogTransform):
    def __init__(
        self,
        profiles: Mapping[str, Profile],
        default: str,
        namespace_of: NamespaceOf,
        meta_tools: Callable[[CatalogView], Mapping[str, Tool]],
    ) -> None:
        super().__init__()
        self.profiles = dict(profiles)
        self.default = default
        self.namespace_of = namespace_of
        self._indexes: dict[str, SearchIndex] = {}
        self._reported: set[str] = set()
        self._meta = dict(meta_tools(self))

    def replace_profiles(self, profiles: Mapping[str, Profile], default: str) -> list[str]:
        """Serve these profiles from now on (a configuration reload); the names of those
        added, removed or changed. The dict is updated in place: the HTTP path layer reads it."""
        changed = sorted(
            name
            for name in self.profiles.keys() | profiles.keys()
            if self.profiles.get(name) != profiles.get(name)
        )
        self.profiles.clear()
        self.profiles.update(profiles)
        self.default = default
        for name in changed:  # their patterns are checked again; stale indexes dropped
            self._reported.discard(name)
            self._indexes.pop(name, None)
        return changed

    # --- whose view ------------------------------------------------------------------------

    def current(self) -> Profile:
        return self.named(requested_profile())

    def named(self, name: str | None) -> Profile:
        """The profile of that name (None, or one that does not exist: the default)."""
        return self.profiles.get(name or self.default) or self.profiles[self.default]

    def shows(self, profile: str | None, tool: str) -> bool:
        """Whether a direct call of `tool` finds it under `profile` (as `get_tool` would)."""
        return self._exists(self.named(profile), tool)

    def report_unknown(self, names: Iterable[str], profiles: Iterable[str] | None = None) -> None:
        """Log, once per profile, one line per name in it that matches no tool."""
        known = list(names)
        for name in profiles if profiles is not None else self.profiles:
            if name in self._reported:
                continue
            self._reported.add(name)
            for problem in self.profiles[name].unknown_names(known):
                log.warning("%s", problem)

    # --- the transform ---------------------------------------------------------------------

    async def transform_tools(self, tools: Sequence[Tool]) -> Sequence[Tool]:
        profile = self.current()
        self.report_unknown((tool.name for tool in tools), [profile.name])
        shown = [profile.present(tool) for tool in tools if self._exists(profile, tool.name)]
        if profile.mode == "full":
            return shown
        pinned = [tool for tool in shown if tool.name in profile.pinned]
        return [*self._meta.values(), *(pinned if profile.mode == "hybrid" else ())]

    async def get_tool(
        self, name: str, call_next: GetToolNext, *, version: VersionSpec | None = None
    ) -> Tool | None:
        profile = self.current()
        if name in self._meta:
            return self._meta[name] if profile.mode != "full" else None
        if not self._exists(profile, name):
            return None
        tool = await call_next(name, version=version)
        return profile.present(tool) if tool is not None else None

    @staticmethod
    def _exists(profile: Profile, name: str) -> bool:
        return name not in META_TOOLS and profile.allows(name)

    # Prompts, resources and templates outside the profile do not exist for it either.

    async def transform_prompts(self, prompts: Sequence[Prompt]) -> Sequence[Prompt]:
        profile = self.current()
        return [prompt for prompt in prompts if profile.allows_any(keys_of(prompt))]

    async def transform_resources(self, resources: Sequence[Resource]) -> Sequence[Resource]:
        profile = self.current()
        return [resource for resource in resources if profile.allows_any(keys_of(resource))]

    async def transform_resource_templates(
        self, templates: Sequence[ResourceTemplate]
    ) -> Sequence[ResourceTemplate]:
        profile = self.current()
        return [template for template in templates if profile.allows_any(keys_of(template))]

    async def get_prompt(
        self, name: str, call_next: GetPromptNext, *, version: VersionSpec | None = None
    ) -> Prompt | None:
        prompt = await call_next(name, version=version)
        return prompt if prompt and self.current().allows_any(keys_of(prompt)) else None

    async def get_resource(
        self, uri: str, call_next: GetResourceNext, *, version: VersionSpec | None = None
    ) -> Resource | None:
        resource = await call_next(uri, version=version)
        return resource if resource and self.current().allows_any(keys_of(resource)) else None

    async def get_resource_template(
        self, uri: str, call_next: GetResourceTemplateNext, *, version: VersionSpec | None = None
    ) -> ResourceTemplate | None:
        template = await call_next(uri, version=version)
        if template is None:
            return None
        # The URI read is matched too: an exclude pattern may name it rather than the template.
        allowed = self.current().allows_any((*keys_of(template), uri))
        return template if allowed else None

    # --- for the meta-tools ----------------------------------------------------------------

    async def tools_in_profile(self, ctx: Context) -> tuple[Profile, list[Tool]]:
        """The caller's profile and its tools as it sees them (overrides applied)."""
        profile = self.current()
        # Without the list middleware: the meta-tool's own call has passed it already, and
        # it re-dereferences every schema (≈75 ms at 500 tools here).
        tools = await self.get_tool_catalog(ctx, run_middleware=False)
        return profile, [profile.present(t) for t in tools if self._exists(profile, t.name)]

    async def others_in_profile(self, ctx: Context) -> list[Other]:
        """The prompts, resources and resource templates of the caller's profile."""
        profile = self.current()
        found: list[Other] = [
            *await self.get_prompt_catalog(ctx, run_middleware=False),
            *await self.get_resource_catalog(ctx, run_middleware=False),
            *await self.get_resource_template_catalog(ctx, run_middleware=False),
        ]
        return [component for component in found if profile.allows_any(keys_of(component))]

    def namespace_of_other(self, component: Other) -> str:
        """The upstream a proxied prompt or resource comes from (its one tag), else what
        the gateway's namespace rule says of its name."""
        if len(component.tags) == 1:
            return next(iter(component.tags))
        return self.namespace_of(component.name)

    async def index_for(self, profile: Profile, components: Sequence[Component]) -> SearchIndex:
        """The profile's search index, brought up to date with `components` (tools,
        prompts, resources, templates), incrementally."""
        index = self._indexes.get(profile.name)
        if index is None:
            # The word vectors load once per process, in a worker thread (not on the loop).
            vectors = await anyio.to_thread.run_sync(shared_vectors)
            index = self._indexes.setdefault(profile.name, SearchIndex(vectors))
        index.sync(components, search_key, self._entry)
        return index

    def _entry(self, component: Component) -> CatalogEntry:
        if isinstance(component, Tool):
            return catalog_entry(component, self.namespace_of(component.name))
        return component_entry(component, self.namespace_of_other(component))

    def tool_counts(self, names: Iterable[str]) -> dict[str, dict[str, int | str]]:
        """Per profile: its mode, the tools that exist for it, and what tools/list shows."""
        known = list(names)
        counts: dict[str, dict[str, int | str]] = {}
        for name, profile in self.profiles.items():
            visible = [tool for tool in known if self._exists(profile, tool)]
            listed = {
                "full": len(visible),
                "menu": len(self._meta),
                "hybrid": len(self._meta) + len([t for t in visible if t in profile.pinned]),
            }[profile.mode]
            counts[name] = {"mode": profile.mode, "tools": len(visible), "listed": listed}
        return counts
