"""Per-upstream overrides from the gateway's settings (`[upstreams.<name>]` in archon.toml),
layered over the loaded manifests, shipped or the user's, so a shipped manifest can be
tuned without copying it.

Tables (`env`, `tool_timeouts`, `headers`) are merged key by key over the manifest's;
everything else replaces the manifest's value. The result is validated as a manifest, with
the same one-line messages.

Timeouts, first found wins: a per-tool timeout (override, then manifest); the override's
`timeout`; a user manifest's `timeout`; the gateway's `tool_timeout` when it was set
explicitly (ARCHON_TOOL_TIMEOUT, archon.toml or a flag); a shipped manifest's `timeout`;
the gateway's default `tool_timeout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.upstreams.manifest import Manifest, ManifestSet, describe_validation_error

_MERGED = ("env", "tool_timeouts", "headers")


class UpstreamOverride(BaseModel):
    """What `[upstreams.<name>]` may set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    timeout: float | None = Field(None, gt=0)
    tool_timeouts: dict[str, float] | None = None
    env: dict[str, str] | None = None
    pass_env: list[str] | None = None
    args: list[str] | None = None
    url: str | None = None
    headers: dict[str, str] | None = None


def layer_overrides(
    found: ManifestSet,
    overrides: Mapping[str, Mapping[str, Any]],
    *,
    shipped_dir: Path,
    gateway_timeout_set: bool,
) -> list[Manifest]:
    """The manifests with the overrides applied; SettingsInvalid names the table, key and
    reason (an unknown upstream lists the known ones)."""
    by_name = {manifest.name: manifest for manifest in found.manifests}
    unknown = [name for name in overrides if name not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise SettingsInvalid(
            f"[upstreams.{unknown[0]}]: no upstream manifest named '{unknown[0]}' "
            f"(upstreams: {known})"
        )
    layered = []
    for manifest in found.manifests:
        file = found.files.get(manifest.name)
        shipped = file is not None and file.parent.resolve() == shipped_dir.resolve()
        if shipped and gateway_timeout_set:
            # The user's own tool_timeout beats a shipped manifest's suggestion.
            manifest = manifest.model_copy(update={"timeout": None})
        table = overrides.get(manifest.name)
        layered.append(manifest if table is None else _apply(manifest, table))
    return layered


def _apply(manifest: Manifest, table: Mapping[str, Any]) -> Manifest:
    where = f"[upstreams.{manifest.name}]"
    try:
        override = UpstreamOverride.model_validate(dict(table))
    except ValidationError as exc:
        raise SettingsInvalid(f"{where}: {_describe(exc)}") from None
    changes = override.model_dump(exclude_none=True)
    values = manifest.model_dump()
    for key, value in changes.items():
        if key in _MERGED:
            values[key] = {**getattr(manifest, key), **value}
        else:
            values[key] = value
    if "url" in changes:
        values.pop("command", None)  # a URL turns it into a remote upstream
    try:
        return Manifest.model_validate(values)
    except ValidationError as exc:
        # from None: pydantic's error quotes the input values (env, headers may be secrets).
        raise SettingsInvalid(f"{where}: {describe_validation_error(exc)}") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            known = ", ".join(UpstreamOverride.model_fields)
            parts.append(f"unknown key '{field}' (known: {known})")
        else:
            parts.append(f"key '{field}': {error['msg']}")
    return "; ".join(parts)
