"""The one shape of a native tool family (tools/<family>/).

A family is built from plain arguments (numbers, paths, URLs, secrets, a breaker registry;
never the settings, never the server) and declares four things; the composition root
(`gateway/app.py`) does the wiring, the same way for every family:

- `tools()`: its FastMCP tools, usually `Tool.from_function(self.method, ...)`; the
  composition root adds them to the server;
- `lifespan()`: what it holds while the server runs (an async context manager, entered when
  the server starts and exited when it stops; default: nothing);
- `health_probes()`: the components it reports in /health and gateway_info;
- `time_limits()`: seconds per tool name, given to the gateway's timeout middleware (tools
  not named get the gateway's default limit).

State lives on the family instance: a client opened in the lifespan is an attribute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from fastmcp.tools import Tool

from archon_gateway.core.health import Probe

# The tag that declares a native tool an admin tool: over HTTP only an admin credential may
# list or call it (the one rule, enforced in gateway/admin_policy.py).
ADMIN_TAG = "admin"
# How a refused admin call begins after the tool's name ("gateway_reload is an admin tool:
# ..."); the CLI recognises the refusal by it.
ADMIN_TOOL_REFUSED = "is an admin tool"


@dataclass(frozen=True)
class HealthProbe:
    """One component of a family's health: `probe` is called for every health snapshot. A
    non-critical component that is down makes the gateway degraded, not down."""

    name: str
    probe: Probe
    critical: bool = True


class ToolFamily(ABC):
    """A unit of native tools: its tools, its lifespan, its health probes and its time
    limits."""

    @abstractmethod
    def tools(self) -> Sequence[Tool]:
        """The family's tools, in listing order."""

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Entered when the server starts, exited when it stops."""
        return nullcontext()

    def health_probes(self) -> Sequence[HealthProbe]:
        return ()

    def time_limits(self) -> Mapping[str, float]:
        """Seconds a call of each named tool may take."""
        return {}
