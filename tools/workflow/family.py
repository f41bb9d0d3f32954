"""orchestrate_pattern_workflow: hand a workflow to the workflow coordinator over HTTP,
report its progress to the MCP client, and return its result (REST mapping in
tools/workflow/client.py and docs/tools.md).

One httpx client (pool 100/20) and one breaker serve every call; the client lives as long as
the server runs (the family's lifespan). The tool's time limit is declared by the family and
applied by the gateway's timeout middleware; when the call is cancelled or times out, the
remote run is cancelled before the error is returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from fastmcp import Context
from fastmcp.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from archon_gateway.core.errors import (
    UpstreamUnavailable,
    tool_errors,
)
from archon_gateway.core.health import ComponentStatus, Probe
from archon_gateway.core.tool_family import HealthProbe, ToolFamily

if TYPE_CHECKING:
    from archon_gateway.core.circuit_breaker import BreakerRegistry, CircuitBreaker
    from archon_gateway.core.http_client import ConnectionObserver
    from archon_gateway.tools.workflow.client import CoordinatorClient, RunStatus

TOOL_NAME = "orchestrate_pattern_workflow"
COMPONENT = "workflow_coordinator"
NOT_CONFIGURED = "set ARCHON_WORKFLOW_COORDINATOR_URL"

ANNOTATIONS = ToolAnnotations(
    title="Run a pattern workflow",
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=False,
    open_world_hint=True,
)


class WorkflowResult(BaseModel):
    workflow: str
    run_id: str = Field(description="the coordinator's id for this run")
    status: Literal["succeeded"]
    result: Any = Field(description="what the workflow returned")


class WorkflowTools(ToolFamily):
    """The workflow tool. Without `url` it is still listed, and says how to configure it
    (and httpx is not even imported). Requests go through the breaker named "workflow
    coordinator" in `breakers` (else a private one). `timeout` is the tool's time limit
    (None: the gateway's default)."""

    def __init__(
        self,
        url: str | None,
        *,
        timeout: float | None = None,
        breakers: BreakerRegistry | None = None,
        request_timeout: float = 30.0,
        poll_max: float = 2.0,
        connections: ConnectionObserver | None = None,
    ) -> None:
        self._url = url
        self._connections = connections
        self._timeout = timeout
        self._request_timeout = request_timeout
        self._poll_max = poll_max
        self._breaker = _breaker(breakers) if url is not None else None
        self._client: CoordinatorClient | None = None

    def tools(self) -> Sequence[Tool]:
        return [Tool.from_function(self.orchestrate_pattern_workflow, annotations=ANNOTATIONS)]

    def time_limits(self) -> Mapping[str, float]:
        return {TOOL_NAME: self._timeout} if self._timeout is not None else {}

    def health_probes(self) -> Sequence[HealthProbe]:
        if self._url is None or self._breaker is None:
            status = ComponentStatus("disabled", NOT_CONFIGURED)
            return [HealthProbe(COMPONENT, lambda: status, critical=False)]
        return [HealthProbe(COMPONENT, _probe(self._url, self._breaker), critical=False)]

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The coordinator client, open while the server runs (when a URL is configured)."""
        if self._url is None or self._breaker is None:
            yield
            return
        from archon_gateway.core.http_client import create_http_client
        from archon_gateway.tools.workflow.client import NAME, CoordinatorClient

        client = create_http_client(
            self._url,
            timeout=self._request_timeout,
            observer=self._connections,
            backend=NAME,
        )
        async with client as http:
            self._client = CoordinatorClient(http, self._breaker, poll_max=self._poll_max)
            try:
                yield
            finally:
                self._client = None

    async def orchestrate_pattern_workflow(
        self,
        workflow: Annotated[
            str,
            Field(
                pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
                description="the workflow's name on the coordinator",
            ),
        ],
        ctx: Context,
        inputs: Annotated[
            dict[str, Any] | None, Field(description="the workflow's inputs (JSON object)")
        ] = None,
    ) -> WorkflowResult:
        """Run a workflow on the workflow coordinator and return its result. Progress is
        reported as it runs; cancelling the call (or its time limit) cancels the run."""
        with tool_errors():
            client = self._running_client()
            run_id, result = await client.run(workflow, inputs or {}, _reporter(ctx))
            return WorkflowResult(
                workflow=workflow, run_id=run_id, status="succeeded", result=result
            )

    def _running_client(self) -> CoordinatorClient:
        if self._url is None:
            raise UpstreamUnavailable(
                f"the workflow coordinator is not configured; {NOT_CONFIGURED}"
            )
        if self._client is None:
            raise UpstreamUnavailable("the workflow coordinator client is not running")
        return self._client


def _breaker(breakers: BreakerRegistry | None) -> CircuitBreaker:
    from archon_gateway.core.circuit_breaker import BreakerRegistry
    from archon_gateway.tools.workflow.client import NAME

    registry = breakers if breakers is not None else BreakerRegistry()  # empty is falsy
    # Outages only: an invalid argument or a workflow that failed on a working coordinator
    # are refusals, not the coordinator being down (errors.counts_as_outage).
    return registry.get_or_create(NAME)


def _reporter(ctx: Context) -> Callable[[RunStatus], Awaitable[None]]:
    """Reports a run's progress to the MCP client (the last known progress when the
    coordinator does not say)."""
    reported = 0.0

    async def progress(state: RunStatus) -> None:
        nonlocal reported
        reported = state.progress if state.progress is not None else reported
        message = state.message or state.status
        await ctx.report_progress(reported, state.total, message)

    return progress


def _probe(url: str, breaker: CircuitBreaker) -> Probe:
    host = urlsplit(url).hostname or url

    def probe() -> ComponentStatus:
        state = breaker.current_state
        if state == "open":
            return ComponentStatus(
                "degraded", f"circuit open after failures, retry in {breaker.retry_in():.0f} s"
            )
        return ComponentStatus("ok" if state == "closed" else "degraded", host)

    return probe
