"""The one error tree of the gateway.

Foreign exceptions (pydantic, OSError, httpx, MCP SDK) are translated into these at the
boundary where they happen, `raise ... from exc`, so the cause reaches the log while callers
and users see one vocabulary. Every message is a single line that says what went wrong and,
where it can, what to do about it.

    GatewayError
    ├── CallerError          the request (or the user's configuration) is wrong
    │   ├── InvalidArgument, NotFound, AuthRejected, WebhookRejected
    │   ├── SettingsInvalid, ManifestInvalid, UnusableFile, JsonRejected,
    │   │   MalformedEvent
    │   └── IncompatibleVectorStore
    ├── Refused              a dependency is up and failed this one request
    │   └── UpstreamRequestFailed, WorkflowFailed, ToolBusy
    ├── Unavailable          a dependency is down, unreachable or too slow
    │   ├── UpstreamUnavailable
    │   │   ├── UpstreamRestarting   (refused at once while it restarts)
    │   │   ├── UpstreamStartTimeout
    │   │   ├── UpstreamConnectionLost
    │   │   └── BackendTimeout
    │   ├── VectorStoreUnavailable
    │   ├── EmbeddingFailed
    │   │   └── EmbeddingTimeout
    │   ├── UpstreamCallFailed   (one call failed; the upstream is up)
    │   ├── ToolTimeout, CircuitOpen, ToolFailed
    │   └── FrontDoorFailed
    │       └── ListenFailed
    └── InternalFault        a bug: an invariant of the gateway itself broke

How a tool error travels (one flow for native and proxied tools):
1. A tool body raises a GatewayError; `tool_errors()` wraps it in FastMCP's `ToolError`
   with the same one-line message, keeping it as the cause (FastMCP would otherwise log a
   traceback for an expected failure).
2. The breaker middleware unwraps the cause (`sdk_compat.tool_error_cause`) and lets its
   breaker judge it with `counts_as_outage`: only `Unavailable`, `InternalFault` and
   foreign exceptions count; caller errors, refusals and cancellation never do.
3. The metrics middleware classifies the unwrapped cause into an outcome label.
4. The error-translation middleware (outermost) shows the client the one line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    # Whether a circuit breaker counts this as its dependency failing (see counts_as_outage).
    outage: ClassVar[bool] = True


# --- the caller's fault: never an outage ------------------------------------------------


class CallerError(GatewayError):
    """The request, or the configuration the user gave, cannot be used as it is."""

    outage = False


class InvalidArgument(CallerError):
    """A tool argument is well-formed but cannot be used (names the argument and why)."""


class NotFound(CallerError):
    """A named item (a pattern, an upstream, ...) does not exist."""


class AuthRejected(CallerError):
    """Credentials were missing or wrong."""


class WebhookRejected(CallerError):
    """A webhook delivery refused with an HTTP status and a reason code (bad signature,
    stale timestamp, too large, not JSON, ...)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class SettingsInvalid(CallerError):
    """The configuration (env, config file or flags) cannot be used; the process exits 2."""


class ManifestInvalid(CallerError):
    """An upstream manifest failed validation (file, field and reason are in the message)."""


class MissingVariable(ManifestInvalid):
    """A manifest's header references an environment variable that is not set (the message
    names the variable, never a value)."""


class UnusableFile(CallerError):
    """A file the user wrote is missing, unreadable, or does not parse (`unparsable`).
    `reason` completes "<path>: …": "does not exist", "cannot be read: <why>", "not valid
    TOML: <where>"."""

    def __init__(self, path: Path, reason: str, *, unparsable: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.unparsable = unparsable


class MalformedEvent(CallerError):
    """A Kafka record is not a valid event envelope (the reason names fields, never values)."""


class JsonRejected(CallerError):
    """Outside input that is not JSON, or that breaks a size or depth limit. `limit` is
    "size", "depth", "non_finite" (NaN, Infinity, or a number that overflows) or None
    (plain syntax error)."""

    def __init__(self, message: str, limit: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.limit = limit
        # The parser's own words (where it failed), or the limit message.
        self.detail = detail or message


class IncompatibleVectorStore(CallerError):
    """A vector collection was built with another embedding model or dimension."""


# --- a dependency answered, and failed this request: it is up ---------------------------


class Refused(GatewayError):
    """A dependency is up and answered this one request with a failure."""

    outage = False


class UpstreamRequestFailed(Refused):
    """The upstream answered a request with a JSON-RPC error (passed through as it came)."""

    def __init__(self, upstream: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"upstream '{upstream}' error {code}: {message}")
        self.code = code
        self.upstream_message = message
        self.data = data


class ToolBusy(Refused):
    """Admission control: the tool already runs its limit of calls at once (try again)."""

    def __init__(self, tool: str, limit: int) -> None:
        super().__init__(
            f"{tool} is busy: {limit} call(s) already running, its concurrency limit; "
            "try again in a moment"
        )
        self.tool = tool
        self.limit = limit


class PeerRequestRefused(Refused):
    """The gateway answers a request an upstream sent it (sampling, elicitation, roots) with
    this JSON-RPC error; it goes back to that upstream, never to a user."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class WorkflowFailed(Refused):
    """The workflow coordinator ran the workflow and reported it failed or cancelled."""


# --- a dependency is down, unreachable or too slow -------------------------------------


class Unavailable(GatewayError):
    """Something the call depends on is down, unreachable or did not answer in time."""


class UpstreamUnavailable(Unavailable):
    """An upstream (or HTTP backend) is not running, crashed, or is restarting."""


class UpstreamRestarting(UpstreamUnavailable):
    """Refused at once: the upstream is down and its supervisor will restart it. Circuit
    breakers do not count these (the supervisor already fails fast; counting them would
    keep the breaker open after the upstream is back)."""

    outage = False


class UpstreamStartTimeout(UpstreamUnavailable):
    """An upstream did not start (initialize, list its tools) within its startup_timeout."""


class UpstreamConnectionLost(UpstreamUnavailable):
    """A transport to an upstream broke (pipe closed, HTTP connection refused, session
    unrecoverable). `reason` completes "upstream 'x' …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BackendTimeout(UpstreamUnavailable):
    """An HTTP backend did not answer in time (counts as a breaker failure)."""


class UpstreamCallFailed(Unavailable):
    """One call to an upstream failed in transit (its reply was too large, the remote failed
    that one HTTP request) while the upstream itself is up: like a timeout, it counts
    against that tool's breaker, not the whole upstream's."""


class VectorStoreUnavailable(Unavailable):
    """The vector store cannot be opened or reached (in use by another process, server down)."""


class BrokerUnavailable(Unavailable):
    """The event broker (Kafka) is not connected, or did not acknowledge in time."""


class EmbeddingFailed(Unavailable):
    """The embedding model failed, timed out, or returned vectors of the wrong shape."""


class EmbeddingTimeout(EmbeddingFailed):
    """The embedding model ran past its time limit (more texts would only take longer)."""


class ToolTimeout(Unavailable):
    """A tool call ran past its time limit and was cancelled."""

    def __init__(self, tool: str, seconds: float) -> None:
        super().__init__(f"{tool} timed out after {seconds:g} s")
        self.tool = tool
        self.seconds = seconds


class CircuitOpen(Unavailable):
    """A breaker is open; calls fail fast until it half-opens."""

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"{name} unavailable (circuit open, retry in {math.ceil(retry_in)} s)")
        self.name = name
        self.retry_in = retry_in


class ToolFailed(Unavailable):
    """A helper a tool depends on (a subprocess, a parser) failed or ran past its limit."""


class FrontDoorFailed(Unavailable):
    """A front door (stdio or HTTP) cannot be opened or failed to start."""


class ListenFailed(FrontDoorFailed):
    """The HTTP front door could not bind its address (port in use, bad host, no permission)."""


# --- a bug ------------------------------------------------------------------------------


class InternalFault(GatewayError):
    """An invariant of the gateway itself broke (a bug to report, not the caller's doing)."""


def counts_as_outage(exc: BaseException) -> bool:
    """Whether a circuit breaker counts `exc` as its dependency failing: every Exception
    except caller errors, refusals and upstream-restarting refusals (by their `outage`
    flag). Cancellation is a BaseException and never counts."""
    if not isinstance(exc, Exception):
        return False
    return exc.outage if isinstance(exc, GatewayError) else True


@contextmanager
def tool_errors() -> Iterator[None]:
    """Inside a tool: our errors become the one-line ToolError the caller reads. FastMCP
    would otherwise wrap them ("Error calling tool 'x': ...") and log a traceback for an
    expected failure before any middleware sees them. The error stays the ToolError's
    cause: breakers and metrics judge the call by it (see the flow above)."""
    try:
        yield
    except GatewayError as exc:
        # Imported here: the CLI imports this module before it decides to load fastmcp.
        from fastmcp.exceptions import ToolError

        raise ToolError(str(exc)) from exc
