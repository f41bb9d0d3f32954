"""Per-tool call counts by outcome and latency (sessions per transport: the session
registry counts them).

Outcomes: ok, error (the tool failed or answered with isError), timeout (ToolTimeout),
circuit_open (CircuitOpen: fast-failed by a breaker), rejected (AuthRejected), cancelled
(the caller went away). Tool labels come from the catalog, never from user input."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastmcp.exceptions import NotFoundError

from archon_gateway.core.errors import AuthRejected, CircuitOpen, ToolBusy, ToolTimeout
from archon_gateway.core.sdk_compat import tool_error_cause
from archon_gateway.gateway.call_context import CallContext, Next
from archon_gateway.gateway.gateway_metrics import UNKNOWN_TOOL, GatewayMetrics
from archon_gateway.gateway.session_registry import ClientSession, SessionRegistry


def outcome_of(exc: BaseException) -> str:
    """The metrics outcome for a call that raised `exc` (FastMCP's ToolError wrapper is
    looked through)."""
    cause = tool_error_cause(exc)
    if cause is not None:
        exc = cause
    if isinstance(exc, ToolTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, ToolBusy):
        return "busy"
    if isinstance(exc, AuthRejected):
        return "rejected"
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return "error"


class CountCalls:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        # Labelled children, looked up once: `labels()` costs more than the count itself.
        self._counts: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        tool = call.tool
        outcome = "error"
        started = time.perf_counter()
        try:
            result = await call_next(call)
            outcome = "error" if _is_error(result) else "ok"
            return result
        except NotFoundError:
            # Unknown names are user input: count them under one label.
            tool = UNKNOWN_TOOL
            raise
        except BaseException as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            self._count(tool, outcome).inc()
            self._latency(tool).observe(time.perf_counter() - started)

    def _count(self, tool: str, outcome: str) -> Any:
        child = self._counts.get((tool, outcome))
        if child is None:
            child = self._counts[tool, outcome] = self._metrics.tool_calls.labels(
                tool=tool, outcome=outcome
            )
        return child

    def _latency(self, tool: str) -> Any:
        child = self._latencies.get(tool)
        if child is None:
            child = self._latencies[tool] = self._metrics.tool_latency.labels(tool=tool)
        return child


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", False))


def count_sessions(metrics: GatewayMetrics, registry: SessionRegistry) -> None:
    """Sessions initialized, by transport; the stdio one is open until the process stops."""

    def opened(session: ClientSession) -> None:
        transport = session.transport or "memory"
        metrics.sessions.labels(transport=transport).inc()
        if transport == "stdio":
            # One stdio session per process, open until the process stops serving.
            metrics.active_sessions.labels(transport="stdio").set(1)

    registry.on_open(opened)
