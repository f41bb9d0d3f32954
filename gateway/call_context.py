"""What the gateway knows about one tool call, whichever path serves it (FastMCP's or the
lane): who is calling, over which session and transport, the tool and its route, the
deadline, and the channels back to the caller. Every step of the call pipeline
(gateway/call_pipeline.py) reads and fills this one value; none reads FastMCP's Context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from archon_gateway.upstreams.callers import Caller

# Tool names the caller may see (for "did you mean ...?" on an unknown tool).
ToolNames = Callable[[], Awaitable[list[str]]]


class Outcome(Protocol):
    """A call's result as the steps see it: only whether the tool reported an error."""

    @property
    def is_error(self) -> bool: ...


# Runs the rest of the pipeline (and finally the tool) for a call.
Next = Callable[["CallContext"], Awaitable[Any]]


class Step(Protocol):
    """One policy over a call: do something before and after `call_next(call)`."""

    async def __call__(self, call: CallContext, call_next: Next) -> Any: ...


@dataclass(slots=True)
class CallContext:
    tool: str
    arguments: dict[str, Any]
    # Runs the tool itself once every step has passed the call on (set by the path).
    run_tool: Next
    # "stdio", "streamable-http", or None (in memory: fastmcp's Client, tests).
    transport: str | None = None
    # The handshake-era session the call belongs to (None: 2026-07-28 or in memory).
    session_id: str | None = None
    # Who calls: the auth decision's name ("service", "user:<sub>", "local" on stdio) and
    # how they proved it ("service-token", "profile-token", "jwt", None: no credential).
    principal: str = "local"
    credential_kind: str | None = None
    profile: str | None = None  # the catalog profile the call came through (None: default)
    upstream: str | None = None  # the upstream serving the tool; None for native tools
    deadline: float | None = None  # anyio clock; set by the time-limit step
    # Progress, log lines and questions back to the caller (the lane's); None on
    # FastMCP's path, where the tool reaches them through its own Context.
    caller: Caller | None = None
    # What the caller may call instead (for an unknown tool); None: nothing to suggest.
    tool_names: ToolNames | None = None
