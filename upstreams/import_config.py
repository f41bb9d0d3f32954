"""`archon-gateway import-config`: turn a Claude Desktop / Cursor / Claude Code `mcpServers`
JSON file into one manifest per stdio server."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archon_gateway.gateway.core.config_files import UnusableFile, read_json
from archon_gateway.gateway.core.errors import ManifestInvalid
from archon_gateway.upstreams.manifest import Manifest, describe_validation_error, parse_manifest


@dataclass(frozen=True)
class ImportOutcome:
    server: str
    written: Path | None
    note: str

    def __str__(self) -> str:
        return f"{self.server}: {self.note}"


def read_servers(path: Path) -> dict[str, Any]:
    """The `mcpServers` (or VS Code's `servers`) mapping of a client config file."""
    try:
        document = read_json(path)
    except UnusableFile as exc:
        raise ManifestInvalid(str(exc)) from exc
    servers = None
    if isinstance(document, dict):
        servers = document.get("mcpServers", document.get("servers"))
    if not isinstance(servers, dict):
        raise ManifestInvalid(f'{path}: no "mcpServers" object found')
    return servers


def manifest_name(server: str) -> str:
    """A valid namespace from a config key: letters, digits and dashes, starting with a
    letter, at most 32 characters."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", server).strip("-")
    if not name or not name[0].isalpha():
        name = f"mcp-{name}".rstrip("-")
    return name[:32].rstrip("-")


def manifest_from_entry(server: str, entry: Any, source: Path) -> Manifest:
    if not isinstance(entry, dict):
        raise ManifestInvalid("entry is not an object")
    if "url" in entry or entry.get("type") in ("http", "sse", "streamable-http"):
        raise ManifestInvalid("URL (HTTP/SSE) servers are not supported yet; only stdio")
    values: dict[str, Any] = {
        "name": manifest_name(server),
        "description": f"imported from {source.name} ({server})",
        "command": entry.get("command"),
        "args": entry.get("args", []),
        "env": entry.get("env", {}),
    }
    if entry.get("cwd"):
        values["cwd"] = entry["cwd"]
    if entry.get("disabled") is True:
        values["enabled"] = False
    values = {key: value for key, value in values.items() if value is not None}
    try:
        return parse_manifest(source, values)
    except ValidationError as exc:
        # from None: pydantic's error quotes the input values (env may hold secrets).
        raise ManifestInvalid(describe_validation_error(exc)) from None


def import_config(path: Path, into: Path, *, overwrite: bool = False) -> list[ImportOutcome]:
    """Write one manifest per stdio server in `path` into `into`; report every server."""
    outcomes = []
    into.mkdir(parents=True, exist_ok=True)
    for server, entry in read_servers(path).items():
        try:
            manifest = manifest_from_entry(server, entry, path)
        except ManifestInvalid as exc:
            outcomes.append(ImportOutcome(server, None, f"skipped: {exc}"))
            continue
        target = into / f"{manifest.name}.toml"
        if target.exists() and not overwrite:
            outcomes.append(ImportOutcome(server, None, f"skipped: {target} exists (--force)"))
            continue
        target.write_text(to_toml(manifest))
        outcomes.append(ImportOutcome(server, target, f"wrote {target}"))
    return outcomes


def to_toml(manifest: Manifest) -> str:
    """The manifest's non-default fields as TOML (strings, lists and tables of strings)."""
    data = manifest.model_dump(exclude_defaults=True, mode="json")
    lines = []
    tables = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines.append(f"\n[{key}]")
        lines.extend(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value))
