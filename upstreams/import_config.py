"""`archon-gateway import-config`: turn a Claude Desktop / Cursor / Claude Code `mcpServers`
(or VS Code `servers`) JSON file into one manifest per server: stdio (`command`) and remote
(`url`, `type: http` / `sse`, with `headers`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archon_gateway.core.config_files import UnusableFile, read_json
from archon_gateway.core.errors import ManifestInvalid
from archon_gateway.upstreams.manifest import Manifest, describe_validation_error, parse_manifest
from archon_gateway.upstreams.manifest_writer import write_manifest


@dataclass(frozen=True)
class ImportOutcome:
    server: str
    written: Path | None
    note: str
    warnings: tuple[str, ...] = ()  # one line each, for stderr

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


# VS Code and Cursor write `${env:NAME}`; manifests say `${NAME}`.
_ENV_INPUT = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_PROMPT_INPUT = re.compile(r"\$\{input:[^}]*\}")
_REMOTE_TYPES = {"http": "streamable-http", "streamable-http": "streamable-http"}
_REMOTE_TYPES |= {"streamableHttp": "streamable-http", "sse": "sse"}


def manifest_from_entry(server: str, entry: Any, source: Path) -> Manifest:
    if not isinstance(entry, dict):
        raise ManifestInvalid("entry is not an object")
    values: dict[str, Any] = {
        "name": manifest_name(server),
        "description": f"imported from {source.name} ({server})",
    }
    url = entry.get("url", entry.get("serverUrl"))  # serverUrl: Windsurf
    kind = entry.get("type")
    if url is not None or kind in _REMOTE_TYPES:
        values |= _remote_values(url, kind, entry.get("headers", {}))
    else:
        values |= {
            "command": entry.get("command"),
            "args": entry.get("args", []),
            "env": entry.get("env", {}),
        }
    if entry.get("cwd") and "command" in values:
        values["cwd"] = entry["cwd"]
    if entry.get("disabled") is True:
        values["enabled"] = False
    values = {key: value for key, value in values.items() if value is not None}
    try:
        return parse_manifest(source, values)
    except ValidationError as exc:
        # from None: pydantic's error quotes the input values (env may hold secrets).
        raise ManifestInvalid(describe_validation_error(exc)) from None


def _remote_values(url: Any, kind: Any, headers: Any) -> dict[str, Any]:
    """url, transport and headers of a remote entry. Without a type, a URL ending in /sse
    is taken to be the older SSE transport (as Cursor does), any other streamable HTTP."""
    if not isinstance(url, str):
        raise ManifestInvalid(f"a {kind} server needs a url")
    transport = _REMOTE_TYPES.get(kind) if isinstance(kind, str) else None
    if transport is None:
        transport = "sse" if url.rstrip("/").endswith("/sse") else "streamable-http"
    if not isinstance(headers, dict):
        raise ManifestInvalid("headers is not an object")
    converted = {}
    for name, value in headers.items():
        if _PROMPT_INPUT.search(str(value)):
            raise ManifestInvalid(
                f"header {name} asks the user for input (${{input:…}}); "
                "put the value in an environment variable and write ${VAR}"
            )
        converted[str(name)] = _ENV_INPUT.sub(r"${\1}", str(value))
    return {"url": url, "transport": transport, "headers": converted}


def import_config(path: Path, into: Path, *, overwrite: bool = False) -> list[ImportOutcome]:
    """Write one manifest per server in `path` into `into` (readable by the owner only, as
    `add` writes them: env values and headers may be secrets); report every server."""
    outcomes = []
    for server, entry in read_servers(path).items():
        try:
            manifest = manifest_from_entry(server, entry, path)
        except ManifestInvalid as exc:
            outcomes.append(ImportOutcome(server, None, f"skipped: {exc}"))
            continue
        try:
            target = write_manifest(into, manifest, overwrite=overwrite)
        except FileExistsError as exc:
            outcomes.append(ImportOutcome(server, None, f"skipped: {exc} exists (--force)"))
            continue
        warnings = tuple(f"{server}: {line}" for line in unresolved_placeholders(manifest))
        outcomes.append(ImportOutcome(server, target, f"wrote {target}", warnings))
    return outcomes


# A client's own variables (`${workspaceFolder}`, `${userHome}`, ...): the gateway has no
# workspace to fill them from. (Headers are left out: there `${NAME}` is an environment
# variable, and a missing one is reported when the gateway starts.)
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


def unresolved_placeholders(manifest: Manifest) -> list[str]:
    """One line per `${...}` the gateway will pass on as written. Names where it is (the
    field, an env or header name), never a value: values may be secrets."""
    places: list[tuple[str, str]] = [("command", manifest.command or "")]
    places += [("args", arg) for arg in manifest.args]
    places += [(f"env {name}", value) for name, value in manifest.env.items()]
    places += [("cwd", str(manifest.cwd))] if manifest.cwd is not None else []
    places += [("url", manifest.url or "")]
    return [
        f"{placeholder} in {where} cannot be resolved by the gateway and is passed on as "
        "written; replace it with a real value"
        for where, text in places
        for placeholder in _PLACEHOLDER.findall(text)
    ]
