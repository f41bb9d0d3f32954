"""Which settings changed between two readings of the configuration, and which of those a
running gateway cannot take (they need a restart). Names only: values may be secrets."""

from __future__ import annotations

from archon_gateway.gateway.settings import Settings

# Settings a reload applies while the gateway runs; every other change needs a restart.
LIVE_SETTINGS = frozenset(
    {
        "upstreams",  # [upstreams.<name>] overlays: applied with the manifests
        "profiles",
        "catalog_mode",
        "profile",
        "tool_timeout",
        "breaker_fail_max",
        "breaker_reset_timeout",
    }
)


def changed_settings(old: Settings, new: Settings) -> list[str]:
    """The names of the settings whose values differ, in declaration order."""
    return [name for name in Settings.model_fields if getattr(old, name) != getattr(new, name)]


def needing_restart(changed: list[str]) -> list[str]:
    """Of the changed settings, those a running gateway cannot apply."""
    return [name for name in changed if name not in LIVE_SETTINGS]


def running_settings(old: Settings, new: Settings) -> Settings:
    """What the gateway runs with after a reload: the new values of the live settings, the
    old ones of the rest (so a change that needs a restart is named until it gets one)."""
    return old.model_copy(update={name: getattr(new, name) for name in LIVE_SETTINGS})
