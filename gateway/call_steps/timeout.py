"""Per-tool time limits that really cancel: the call's task is cancelled at the deadline
(for proxied tools that sends `notifications/cancelled` upstream and frees the session)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from archon_gateway.core.errors import ToolTimeout
from archon_gateway.gateway.call_context import CallContext, Next

# A tool's time limit in seconds.
LimitFor = Callable[[str], float]


class TimeLimit:
    def __init__(self, limit_for: LimitFor) -> None:
        self.limit_for = limit_for

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        seconds = self.limit_for(call.tool)
        call.deadline = anyio.current_time() + seconds
        with anyio.move_on_after(seconds) as scope:
            return await call_next(call)
        assert scope.cancelled_caught
        raise ToolTimeout(call.tool, seconds)


class TimeLimits:
    """Which limit a tool gets, by precedence: its native family's, its manifest's per-tool
    override, its manifest's own, the live `tool_timeout` (told of reloads), the default."""

    def __init__(self, default: float, upstream: Callable[[str], float | None]) -> None:
        self._default = default
        self._live = default
        self._native: dict[str, float] = {}
        # The manifest's per-tool limit, else the manifest's; None: not an upstream tool.
        self._upstream = upstream

    def add_native(self, limits: dict[str, float]) -> None:
        self._native.update(limits)

    def reloaded(self, tool_timeout: float) -> None:
        self._live = tool_timeout

    def limit_for(self, tool: str) -> float:
        return self._native.get(tool) or self._upstream(tool) or self._live or self._default
