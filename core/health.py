"""Component health: each part of the gateway reports its own status through a probe.

Later parts (upstreams, store, Kafka, Qdrant) register a probe here; `/health` and the
`gateway_info` tool read the same snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "degraded", "down", "disabled"]


@dataclass(frozen=True)
class ComponentStatus:
    status: Status
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return (
            {"status": self.status, "detail": self.detail}
            if self.detail
            else {"status": self.status}
        )


Probe = Callable[[], ComponentStatus]


@dataclass
class ComponentRegistry:
    _probes: dict[str, Probe] = field(default_factory=dict)
    _optional: set[str] = field(default_factory=set)

    def register(self, name: str, probe: Probe, *, critical: bool = True) -> None:
        """A non-critical component (one upstream among many) that is down makes the
        gateway degraded, not down."""
        if name in self._probes:
            raise ValueError(f"component {name!r} is already registered")
        self._probes[name] = probe
        if not critical:
            self._optional.add(name)

    def unregister(self, name: str) -> None:
        """Forget a component that no longer exists (an upstream a reload removed)."""
        self._probes.pop(name, None)
        self._optional.discard(name)

    def snapshot(self) -> dict[str, ComponentStatus]:
        return {name: probe() for name, probe in self._probes.items()}

    def overall(self, snapshot: dict[str, ComponentStatus]) -> Status:
        """ok when every enabled component is ok; down if a critical one is down; else
        degraded."""
        states = {
            "degraded" if item.status == "down" and name in self._optional else item.status
            for name, item in snapshot.items()
        } - {"disabled"}
        if "down" in states:
            return "down"
        if "degraded" in states:
            return "degraded"
        return "ok"

    def enabled(self) -> list[str]:
        return [name for name, item in self.snapshot().items() if item.status != "disabled"]
