"""An upstream's tools as the gateway lists them: filtered by its manifest's allow and deny
lists, and namespaced (`{upstream}_{tool}`, at most 64 characters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.naming import namespaced, namespaced_uri

# An upstream says its tools changed; the supervisor re-lists them (debounced).
LIST_CHANGED = "notifications/tools/list_changed"


@dataclass(frozen=True)
class UpstreamTool:
    """One upstream tool as the gateway exposes it."""

    exposed_name: str
    upstream_tool: str
    definition: dict[str, Any]


def catalog_of(
    manifest: Manifest, definitions: Sequence[dict[str, Any]]
) -> dict[str, UpstreamTool]:
    """The exposed tools among an upstream's `tools/list` definitions, by exposed name."""
    tools: dict[str, UpstreamTool] = {}
    for definition in definitions:
        upstream_tool = str(definition["name"])
        if not manifest.exposes(upstream_tool):
            continue
        exposed = namespaced(manifest.name, upstream_tool)
        tools[exposed] = UpstreamTool(exposed, upstream_tool, definition)
    return tools


# An upstream says its resources or prompts changed: re-listed like tools.
RESOURCES_CHANGED = "notifications/resources/list_changed"
PROMPTS_CHANGED = "notifications/prompts/list_changed"


@dataclass(frozen=True)
class Passthrough:
    """An upstream's resources, resource templates and prompts as the gateway exposes them,
    each by exposed URI / URI template / name, with the upstream's raw definition (whose
    `uri`, `uriTemplate` or `name` is the upstream's own)."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.resources) + len(self.templates) + len(self.prompts)


def passthrough_of(
    manifest: Manifest,
    resources: Sequence[dict[str, Any]],
    templates: Sequence[dict[str, Any]],
    prompts: Sequence[dict[str, Any]],
) -> Passthrough:
    """Namespace what an upstream lists besides tools."""
    return Passthrough(
        resources={namespaced_uri(manifest.name, str(r["uri"])): r for r in resources},
        templates={namespaced_uri(manifest.name, str(t["uriTemplate"])): t for t in templates},
        prompts={namespaced(manifest.name, str(p["name"])): p for p in prompts},
    )
