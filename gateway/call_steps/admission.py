"""Admission control: at most N calls of an expensive tool run at once; one more is
refused at once with a clear "busy, try again" error (counted in /metrics as outcome
"busy"), instead of queueing work that would blow the memory bound or the time limit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archon_gateway.core.errors import ToolBusy, tool_errors
from archon_gateway.gateway.call_context import CallContext, Next


class Admission:
    def __init__(self, limits: Mapping[str, int]) -> None:
        self._limits = dict(limits)
        self._running: dict[str, int] = {}

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        tool = call.tool
        limit = self._limits.get(tool)
        if limit is None:
            return await call_next(call)
        running = self._running.get(tool, 0)
        if running >= limit:
            with tool_errors():
                raise ToolBusy(tool, limit)
        self._running[tool] = running + 1
        try:
            return await call_next(call)
        finally:
            self._running[tool] -= 1
