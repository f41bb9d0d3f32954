"""Upstream manifests: one TOML file per MCP server the gateway proxies.

A manifest says how to reach the server: start it (command, args, cwd, env: a stdio
upstream) or connect to it (url, transport, headers: a remote upstream); how long its tools
may run, and which of its tools to expose. Loading never stops at a bad file: each problem is
reported with its file, field and reason, and the valid manifests are used.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from archon_gateway.core.child_env import child_env, is_private
from archon_gateway.core.config_files import UnusableFile, read_toml
from archon_gateway.core.errors import MissingVariable

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,31}$"
# `${NAME}` in a header value: replaced by that variable of the gateway's environment.
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
RemoteTransport = Literal["streamable-http", "sse"]
# Fields that only make sense for one kind of upstream.
_STDIO_ONLY = ("args", "env", "pass_env", "cwd")
_REMOTE_ONLY = ("transport", "headers")


class Manifest(BaseModel):
    """How to run (stdio) or reach (remote) one upstream. Field names are the TOML keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="namespace: tools become <name>_<tool>")
    description: str = ""
    command: str | None = Field(
        None, min_length=1, description="executable name (looked up on PATH) or path"
    )
    url: str | None = Field(None, description="a remote server's MCP endpoint (instead of command)")
    transport: RemoteTransport | None = Field(
        None, description='remote protocol: "streamable-http" (default) or "sse"'
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP headers for a remote upstream; ${VAR} is read from the environment",
    )
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(
        default_factory=dict, description="variables set for the upstream, verbatim"
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="names copied from the gateway's environment when set (API keys)",
    )
    cwd: Path | None = None
    enabled: bool = True
    timeout: float | None = Field(
        None, gt=0, description="default tool timeout in seconds (else the gateway's)"
    )
    tool_timeouts: dict[str, float] = Field(
        default_factory=dict, description="per-tool timeout overrides, by upstream tool name"
    )
    startup_timeout: float = Field(30.0, gt=0, description="seconds to start and list tools")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    allow_tools: list[str] | None = Field(None, description="only these upstream tools")
    deny_tools: list[str] = Field(default_factory=list, description="never these tools")
    install_hint: str = ""
    optional: bool = Field(
        False,
        description="an offer (the shipped manifests): its command missing leaves health ok",
    )
    lazy_start: bool | None = Field(
        None, description="start on first use (default: the gateway's upstream_lazy_start)"
    )
    idle_minutes: float | None = Field(
        None, gt=0, description="stop after this many idle minutes (default: the gateway's)"
    )
    roots: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="roots offered when no calling client lists its own: file:// URIs or paths",
    )

    @field_validator("pass_env")
    @classmethod
    def _no_gateway_secrets(cls, names: list[str]) -> list[str]:
        private = [name for name in names if is_private(name)]
        if private:
            raise ValueError(f"{', '.join(private)} belongs to the gateway, not an upstream")
        return names

    @field_validator("tool_timeouts")
    @classmethod
    def _positive_timeouts(cls, timeouts: dict[str, float]) -> dict[str, float]:
        bad = [name for name, seconds in timeouts.items() if seconds <= 0]
        if bad:
            raise ValueError(f"timeouts must be > 0 (bad: {', '.join(bad)})")
        return timeouts

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; put them in headers")
        return url

    @field_validator("headers")
    @classmethod
    def _header_references(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            private = [ref for ref in _ENV_REFERENCE.findall(value) if is_private(ref)]
            if private:
                raise ValueError(
                    f"header {name} uses {', '.join(private)}, which belongs to the gateway"
                )
        return headers

    @model_validator(mode="after")
    def _command_or_url(self) -> Manifest:
        if (self.command is None) == (self.url is None):
            raise ValueError("set exactly one of command (a stdio server) or url (a remote server)")
        kind, wrong = ("url", _STDIO_ONLY) if self.url else ("command", _REMOTE_ONLY)
        used = [name for name in wrong if name in self.model_fields_set and getattr(self, name)]
        if used:
            raise ValueError(f"{', '.join(used)} cannot be used with {kind}")
        return self

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    @property
    def remote_transport(self) -> RemoteTransport:
        return self.transport or "streamable-http"

    def resolve_headers(self, gateway_env: Mapping[str, str]) -> dict[str, str]:
        """The headers with `${VAR}` replaced; MissingVariable names the first unset one
        (the error never carries a value)."""
        resolved = {}
        for name, value in self.headers.items():
            for variable in _ENV_REFERENCE.findall(value):
                if variable not in gateway_env:
                    raise MissingVariable(
                        f"header {name} needs environment variable {variable}, which is not set"
                    )
            resolved[name] = _ENV_REFERENCE.sub(lambda found: gateway_env[found.group(1)], value)
        return resolved

    def root_objects(self) -> list[dict[str, Any]]:
        """The configured roots as MCP Root objects (paths become file:// URIs)."""
        roots = []
        for root in self.roots:
            uri = root if "://" in root else Path(os.path.expanduser(root)).absolute().as_uri()
            roots.append({"uri": uri, "name": Path(root.rstrip("/")).name or root})
        return roots

    def exposes(self, tool: str) -> bool:
        if tool in self.deny_tools:
            return False
        return self.allow_tools is None or tool in self.allow_tools

    def timeout_for(self, tool: str, default: float) -> float:
        return self.tool_timeouts.get(tool, self.timeout or default)

    def resolve_command(self, path: str | None) -> str | None:
        """The executable's full path, or None when it cannot be found (or it is remote)."""
        if self.command is None:
            return None
        command = os.path.expanduser(self.command)
        if os.sep in command:
            base = self.cwd or Path.cwd()
            full = Path(command) if Path(command).is_absolute() else base / command
            return str(full) if os.access(full, os.X_OK) and full.is_file() else None
        return shutil.which(command, path=path)

    def process_env(self, gateway_env: Mapping[str, str]) -> dict[str, str]:
        """A minimal environment: base names, the declared pass-through names, then `env`."""
        return child_env(gateway_env, pass_names=self.pass_env, values=self.env)


@dataclass(frozen=True)
class ManifestProblem:
    """A manifest that could not be used, and why (one line)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class ManifestSet:
    manifests: list[Manifest]
    problems: list[ManifestProblem]
    # The file each manifest came from, by manifest name (for messages that say what to edit).
    files: dict[str, Path] = field(default_factory=dict)


def builtin_manifests_dir() -> Path:
    """The manifests shipped with the gateway (zen, codanna, serena, context7, ...)."""
    return Path(str(resources.files("archon_gateway.manifests")))


def manifest_folders(manifests_dir: Path | None, data_dir: Path) -> list[Path]:
    """Where manifests are read from: exactly `manifests_dir` when set, else the shipped
    ones followed by the user's `<data_dir>/manifests` (which override them by name)."""
    if manifests_dir is not None:
        return [manifests_dir]
    return [builtin_manifests_dir(), data_dir / "manifests"]


def parse_manifest(path: Path, data: Mapping[str, Any]) -> Manifest:
    """Validate one manifest; a relative cwd is taken relative to the manifest's folder."""
    values = dict(data)
    values.setdefault("name", path.stem)
    manifest = Manifest.model_validate(values)
    if manifest.cwd is not None and not manifest.cwd.is_absolute():
        manifest = manifest.model_copy(update={"cwd": (path.parent / manifest.cwd).resolve()})
    return manifest


def load_manifest_file(path: Path) -> Manifest | ManifestProblem:
    try:
        data = read_toml(path)
    except UnusableFile as exc:
        return ManifestProblem(path, exc.reason)
    try:
        return parse_manifest(path, data)
    except ValidationError as exc:
        return ManifestProblem(path, describe_validation_error(exc))


def load_manifests(directories: Iterable[Path]) -> ManifestSet:
    """Every `*.toml` in the directories, in order; a later manifest with the same name
    replaces an earlier one (so a user's file overrides a shipped one)."""
    by_name: dict[str, Manifest] = {}
    files: dict[str, Path] = {}
    problems: list[ManifestProblem] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            loaded = load_manifest_file(path)
            if isinstance(loaded, ManifestProblem):
                problems.append(loaded)
            else:
                by_name[loaded.name.lower()] = loaded
                files[loaded.name.lower()] = path
    manifests = sorted(by_name.values(), key=lambda m: m.name)
    return ManifestSet(manifests, problems, {m.name: files[m.name.lower()] for m in manifests})


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "manifest"
        if error["type"] == "extra_forbidden":
            known = ", ".join(Manifest.model_fields)
            parts.append(f"unknown field '{field}' (known: {known})")
        elif not error["loc"]:
            parts.append(error["msg"].removeprefix("Value error, "))
        elif error["type"] == "missing":
            parts.append(f"field '{field}' is required")
        else:
            parts.append(f"field '{field}': {error['msg']}")
    return "; ".join(parts)
