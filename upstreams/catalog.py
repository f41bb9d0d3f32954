"""An upstream's tools as the gateway lists them: filtered by its manifest's allow and deny
lists, and namespaced (`{upstream}_{tool}`, at most 64 characters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.naming import namespaced

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
