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
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.transforms import GetToolNext
from fastmcp.server.transforms.catalog import CatalogTransform
from fastmcp.tools import Tool

from archon_gateway.gateway.catalog.profiles import Profile
from archon_gateway.gateway.catalog.search_index import CatalogEntry, SearchIndex
from archon_gateway.gateway.catalog.token_vectors import shared_vectors
from archon_gateway.gateway.core.sdk_compat import VersionSpec

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

    # --- whose view ------------------------------------------------------------------------

    def current(self) -> Profile:
        name = requested_profile()
        return self.profiles.get(name or self.default) or self.profiles[self.default]

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

    # --- for the meta-tools ----------------------------------------------------------------

    async def tools_in_profile(self, ctx: Context) -> tuple[Profile, list[Tool]]:
        """The caller's profile and its tools as it sees them (overrides applied)."""
        profile = self.current()
        # Without the list middleware: the meta-tool's own call has passed it already, and
        # it re-dereferences every schema (≈75 ms at 500 tools here).
        tools = await self.get_tool_catalog(ctx, run_middleware=False)
        return profile, [profile.present(t) for t in tools if self._exists(profile, t.name)]

    async def index_for(self, profile: Profile, tools: Sequence[Tool]) -> SearchIndex:
        """The profile's search index, brought up to date with `tools` (incrementally)."""
        index = self._indexes.get(profile.name)
        if index is None:
            # The word vectors load once per process, in a worker thread (not on the loop).
            vectors = await anyio.to_thread.run_sync(shared_vectors)
            index = self._indexes.setdefault(profile.name, SearchIndex(vectors))
        index.sync(tools, lambda tool: tool.name, self._entry)
        return index

    def _entry(self, tool: Tool) -> CatalogEntry:
        return catalog_entry(tool, self.namespace_of(tool.name))

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
