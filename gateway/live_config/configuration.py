"""Reading the whole configuration (settings, manifests, archon.toml's upstream overlays)
into one value, or the list of what is wrong with it: what the gateway starts with, and
what each reload validates before it changes anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.settings import Settings
from archon_gateway.upstreams.manifest import (
    Manifest,
    ManifestSet,
    builtin_manifests_dir,
    load_manifests,
    manifest_folders,
)
from archon_gateway.upstreams.overrides import layer_overrides


@dataclass(frozen=True)
class ConfigSource:
    """Where the settings come from: `load` reads them again (flags, environment and the
    config file, as at start); `file` is the config file to watch (None: none)."""

    load: Callable[[], Settings]
    file: Path | None = None


@dataclass(frozen=True)
class Configuration:
    """One reading: the settings and the upstream manifests with their overlays, by name."""

    settings: Settings
    manifests: dict[str, Manifest] = field(default_factory=dict)


def layered_manifests(settings: Settings, found: ManifestSet) -> list[Manifest]:
    """The manifests with archon.toml's `[upstreams.<name>]` overrides applied (raises
    SettingsInvalid for an unknown upstream or key)."""
    return layer_overrides(
        found,
        settings.upstreams,
        shipped_dir=builtin_manifests_dir(),
        gateway_timeout_set="tool_timeout" in settings.model_fields_set,
    )


def user_manifest_folder(settings: Settings) -> Path:
    """Where `add` writes manifests and a reload looks for new ones."""
    return settings.manifests_dir or settings.data_dir / "manifests"


def read_configuration(load: Callable[[], Settings]) -> Configuration | list[str]:
    """The configuration as the files say now, or one line per problem (settings, each bad
    manifest, a bad overlay). Blocking file I/O: run it in a worker thread."""
    try:
        settings = load()
    except SettingsInvalid as exc:
        return [str(exc)]
    if not settings.enable_external_gateway:
        return Configuration(settings)
    found = load_manifests(manifest_folders(settings.manifests_dir, settings.data_dir))
    problems = [str(problem) for problem in found.problems]
    try:
        layered = layered_manifests(settings, found)
    except SettingsInvalid as exc:
        return [*problems, str(exc)]
    if problems:
        return problems
    return Configuration(settings, {manifest.name: manifest for manifest in layered})
