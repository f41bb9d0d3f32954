"""What an upstream is doing, as the supervisor sets it and the rest of the gateway reads it
(/health, gateway_info, metrics, the restart tool)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class UpstreamState(StrEnum):
    DISABLED = "disabled"  # off in its manifest, or its command is missing
    STOPPED = "stopped"  # not started yet (lazy), or stopped while idle: a call starts it
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"  # died or stopped answering; a restart is scheduled
    CRASH_LOOPING = "crash_looping"  # keeps dying; retried only slowly


# Down, with a restart scheduled: calls are refused with when to retry.
DOWN_STATES = frozenset({UpstreamState.DEGRADED, UpstreamState.CRASH_LOOPING})


class UpstreamInfo(BaseModel):
    """What is known about one upstream now."""

    state: str
    transport: str  # stdio, streamable-http or sse
    pid: int | None  # None for a remote upstream
    restarts: int
    last_error: str | None
    last_ping_ms: float | None
    tools: int
    retry_in_s: int | None
