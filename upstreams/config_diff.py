"""What changed between two sets of upstream manifests, and what each change needs: a pure
comparison (no I/O), so a reload can say what it will do before it does any of it.

A change to how an upstream is started or reached (command, args, env, url, ...) needs a
restart; anything read per call or per listing (timeouts, allow/deny lists, roots, ...) is
updated in place, so the upstream keeps its session and its calls in flight.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from archon_gateway.upstreams.manifest import Manifest

# Fields read when the upstream is started or connected: changing one means a new run.
RESTART_FIELDS = (
    "command",
    "args",
    "env",
    "pass_env",
    "cwd",
    "url",
    "transport",
    "headers",
    "max_message_bytes",
    "enabled",
)


# The "fields" of an unchanged upstream started because its command is found now.
INSTALLED = ("command installed",)


@dataclass(frozen=True)
class ManifestDiff:
    """Upstream names by what a reload does to them; `fields` says which fields changed
    for each restarted or updated one (names only: values may be secrets)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.restarted or self.updated)

    def lines(self) -> list[str]:
        """One line per change, for the reload's answer, log and audit."""
        fields = self.fields
        found = [f"added upstream {name}" for name in self.added]
        found += [f"removed upstream {name}" for name in self.removed]
        found += [
            f"started upstream {name} (its command is installed now)"
            if fields.get(name) == INSTALLED
            else f"restarted upstream {name} ({', '.join(fields.get(name, ()))} changed)"
            for name in self.restarted
        ]
        found += [
            f"updated upstream {name} in place ({', '.join(fields.get(name, ()))} changed)"
            for name in self.updated
        ]
        return found


def changed_fields(old: Manifest, new: Manifest) -> tuple[str, ...]:
    """The manifest fields whose values differ, in declaration order."""
    return tuple(name for name in Manifest.model_fields if getattr(old, name) != getattr(new, name))


def diff_manifests(
    old: Mapping[str, Manifest],
    new: Mapping[str, Manifest],
    installed: Collection[str] = (),
) -> ManifestDiff:
    """What turns the upstreams `old` into `new` (both by name). `installed`: upstreams
    that could not start because their command was missing and whose command is found now;
    unchanged, they are started all the same (a reload after installing a server)."""
    restarted: list[str] = []
    updated: list[str] = []
    fields: dict[str, tuple[str, ...]] = {}
    for name in sorted(old.keys() & new.keys()):
        changed = changed_fields(old[name], new[name])
        if not changed and name in installed:
            changed = INSTALLED
            restarted.append(name)
            fields[name] = changed
            continue
        if not changed:
            continue
        fields[name] = changed
        (restarted if any(f in RESTART_FIELDS for f in changed) else updated).append(name)
    return ManifestDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        restarted=tuple(restarted),
        updated=tuple(updated),
        fields=fields,
    )
