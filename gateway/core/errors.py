"""The one error tree of the gateway.

Foreign exceptions (pydantic, OSError, httpx, MCP SDK) are translated into these at the
boundary where they happen, so callers and users see one vocabulary. Every message is a
single line that says what went wrong and, where it can, what to do about it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class SettingsInvalid(GatewayError):
    """The configuration (env, config file or flags) cannot be used; the process exits 2."""


class ListenFailed(GatewayError):
    """The HTTP front door could not bind its address (port in use, bad host, no permission)."""


class ManifestInvalid(GatewayError):
    """An upstream manifest failed validation (file, field and reason are in the message)."""


class UpstreamUnavailable(GatewayError):
    """An upstream is not running, crashed, or is restarting."""


class UpstreamRestarting(UpstreamUnavailable):
    """Refused at once: the upstream is down and its supervisor will restart it. Circuit
    breakers do not count these (the supervisor already fails fast; counting them would
    keep the breaker open after the upstream is back)."""


class ToolTimeout(GatewayError):
    """A tool call ran past its time limit and was cancelled."""

    def __init__(self, tool: str, seconds: float) -> None:
        super().__init__(f"{tool} timed out after {seconds:g} s")
        self.tool = tool
        self.seconds = seconds


class AuthRejected(GatewayError):
    """Credentials were missing or wrong."""


class CircuitOpen(GatewayError):
    """A breaker is open; calls fail fast until it half-opens."""

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"{name} unavailable (circuit open, retry in {math.ceil(retry_in)} s)")
        self.name = name
        self.retry_in = retry_in


class InvalidArgument(GatewayError):
    """A tool argument is well-formed but cannot be used (names the argument and why)."""


class NotFound(GatewayError):
    """A named item (a pattern, ...) does not exist."""


class VectorStoreUnavailable(GatewayError):
    """The vector store cannot be opened or reached (in use by another process, server down)."""


class IncompatibleVectorStore(GatewayError):
    """A vector collection was built with another embedding model or dimension."""


class EmbeddingFailed(GatewayError):
    """The embedding model failed, timed out, or returned vectors of the wrong shape."""


class ToolFailed(GatewayError):
    """A helper a tool depends on (a subprocess, a parser) failed or ran past its limit."""


class WorkflowFailed(GatewayError):
    """The workflow coordinator ran the workflow and reported it failed or cancelled."""


@contextmanager
def tool_errors() -> Iterator[None]:
    """Inside a tool: our errors become the one-line ToolError the caller reads. FastMCP
    would otherwise wrap them ("Error calling tool 'x': ...") and log a traceback for an
    expected failure before any middleware sees them. The error stays the ToolError's
    cause: breakers (their `exclude` lists) and metrics judge the call by it."""
    try:
        yield
    except GatewayError as exc:
        # Imported here: the CLI imports this module before it decides to load fastmcp.
        from fastmcp.exceptions import ToolError

        raise ToolError(str(exc)) from exc
