"""Profiles: named views of the catalog, as configured (`ProfileSettings`, read from
`[profiles.NAME]` in archon.toml) and as applied (`Profile`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from fastmcp.tools import Tool
from pydantic import BaseModel, ConfigDict, Field

CatalogMode = Literal["full", "menu", "hybrid"]
DEFAULT_PROFILE = "default"
PROFILE_NAME = r"^[A-Za-z0-9_-]{1,64}$"
_GLOB = Field(min_length=1, max_length=200)


class ToolOverride(BaseModel):
    """A user's wording for one tool, shown to clients of the profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)


class ProfileSettings(BaseModel):
    """`[profiles.NAME]` in archon.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: list[str] = Field(
        default_factory=lambda: ["*"], description="globs over namespaced tool names to show"
    )
    exclude: list[str] = Field(default_factory=list, description="globs to hide (wins)")
    pinned: list[str] = Field(
        default_factory=list, description="tools listed beside the meta-tools in hybrid mode"
    )
    catalog_mode: CatalogMode | None = Field(
        None, description="full, menu or hybrid (default: the gateway's catalog_mode)"
    )
    tools: dict[str, ToolOverride] = Field(
        default_factory=dict, description="per-tool title/description overrides"
    )


@dataclass(frozen=True)
class Profile:
    """One client's view: which names exist for it, how they are listed, in whose words."""

    name: str
    mode: CatalogMode = "full"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    pinned: tuple[str, ...] = ()
    overrides: Mapping[str, ToolOverride] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, name: str, settings: ProfileSettings, default_mode: CatalogMode
    ) -> Profile:
        return cls(
            name=name,
            mode=settings.catalog_mode or default_mode,
            include=tuple(settings.include),
            exclude=tuple(settings.exclude),
            pinned=tuple(settings.pinned),
            overrides=dict(settings.tools),
        )

    def allows(self, name: str) -> bool:
        """Whether `name` exists for this profile's clients."""
        return any(fnmatchcase(name, glob) for glob in self.include) and not any(
            fnmatchcase(name, glob) for glob in self.exclude
        )

    def allows_any(self, names: Iterable[str]) -> bool:
        """Whether a component known by several `names` (a resource's URI and name) exists
        for this profile: one of them is included and none excluded."""
        names = tuple(names)
        return any(fnmatchcase(name, glob) for name in names for glob in self.include) and not any(
            fnmatchcase(name, glob) for name in names for glob in self.exclude
        )

    def present(self, tool: Tool) -> Tool:
        """`tool` as this profile's clients see it (its overrides applied)."""
        override = self.overrides.get(tool.name)
        if override is None:
            return tool
        update = {key: value for key, value in override.model_dump().items() if value is not None}
        return tool.model_copy(update=update) if update else tool

    def unknown_names(self, names: Iterable[str]) -> list[str]:
        """One line per name or pattern in this profile that matches nothing in `names`."""
        known = set(names)
        problems: list[str] = []
        for kind, globs in (("include", self.include), ("exclude", self.exclude)):
            # Patterns naming URIs are about resources, which this check does not list.
            problems += [
                f"profile '{self.name}': {kind} pattern '{glob}' matches no tool"
                for glob in globs
                if "://" not in glob and not any(fnmatchcase(name, glob) for name in known)
            ]
        for name in self.pinned:
            if name not in known:
                problems.append(f"profile '{self.name}': pinned tool '{name}' does not exist")
            elif not self.allows(name):
                problems.append(
                    f"profile '{self.name}': pinned tool '{name}' is outside its include/exclude"
                )
        problems += [
            f"profile '{self.name}': override for unknown tool '{name}'"
            for name in self.overrides
            if name not in known
        ]
        return problems


def build_profiles(
    configured: Mapping[str, ProfileSettings], default_mode: CatalogMode
) -> dict[str, Profile]:
    """The profiles by name; `default` (everything, in the gateway's mode) unless configured."""
    profiles = {
        name: Profile.from_settings(name, settings, default_mode)
        for name, settings in configured.items()
    }
    profiles.setdefault(DEFAULT_PROFILE, Profile(DEFAULT_PROFILE, default_mode))
    return profiles
