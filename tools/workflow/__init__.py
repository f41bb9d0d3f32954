"""orchestrate_pattern_workflow: hand a workflow to the workflow coordinator over HTTP,
report its progress to the MCP client, and return its result (REST mapping in
tools/workflow/client.py and README.md).

One httpx client (pool 100/20) and one breaker serve every call; the client lives as long as
the server runs. The tool's time limit is the gateway's timeout middleware (give it
`workflow_timeout` for this tool); when the call is cancelled or times out, the remote run
is cancelled before the error is returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from fastmcp import Context, FastMCP
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from archon_gateway.gateway.core.errors import (
    InvalidArgument,
    UpstreamUnavailable,
    WorkflowFailed,
    tool_errors,
)
from archon_gateway.gateway.core.health import ComponentRegistry, ComponentStatus, Probe

if TYPE_CHECKING:
    from archon_gateway.gateway.core.circuit_breaker import BreakerRegistry, CircuitBreaker
    from archon_gateway.tools.workflow.client import CoordinatorClient, RunStatus

__all__ = ["TOOL_NAME", "WorkflowResult", "add_workflow_tools"]

TOOL_NAME = "orchestrate_pattern_workflow"


class WorkflowResult(BaseModel):
    workflow: str
    run_id: str = Field(description="the coordinator's id for this run")
    status: Literal["succeeded"]
    result: Any = Field(description="what the workflow returned")


def add_workflow_tools(
    server: FastMCP,
    components: ComponentRegistry,
    *,
    add_lifetime: Callable[[Callable[[], AbstractAsyncContextManager[Any]]], None],
    url: str | None,
    breakers: BreakerRegistry | None = None,
    request_timeout: float = 30.0,
    poll_max: float = 2.0,
) -> None:
    """Register the tool. Without `url` it is still listed, and says how to configure it
    (and httpx is not even imported). Requests go through the breaker named "workflow
    coordinator" in `breakers` (else a private one)."""
    holder: list[CoordinatorClient] = []
    if url is None:
        status = ComponentStatus("disabled", "set ARCHON_WORKFLOW_COORDINATOR_URL")
        components.register("workflow_coordinator", lambda: status, critical=False)
    else:
        from archon_gateway.gateway.core.circuit_breaker import BreakerRegistry
        from archon_gateway.gateway.core.http_client import create_http_client
        from archon_gateway.tools.workflow.client import NAME, CoordinatorClient

        not_outages = (InvalidArgument, WorkflowFailed)
        registry = breakers if breakers is not None else BreakerRegistry()  # empty is falsy
        guard = registry.get_or_create(NAME, exclude=not_outages)
        components.register("workflow_coordinator", _probe(url, guard), critical=False)

        @asynccontextmanager
        async def lifetime() -> AsyncIterator[None]:
            async with create_http_client(url, timeout=request_timeout) as http:
                holder.append(CoordinatorClient(http, guard, poll_max=poll_max))
                try:
                    yield
                finally:
                    holder.clear()

        add_lifetime(lifetime)

    @server.tool(
        name=TOOL_NAME,
        annotations=ToolAnnotations(
            title="Run a pattern workflow",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def orchestrate_pattern_workflow(
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
            if url is None:
                raise UpstreamUnavailable(
                    "the workflow coordinator is not configured; "
                    "set ARCHON_WORKFLOW_COORDINATOR_URL"
                )
            if not holder:
                raise UpstreamUnavailable("the workflow coordinator client is not running")
            client = holder[0]
            reported = 0.0

            async def progress(state: RunStatus) -> None:
                nonlocal reported
                reported = state.progress if state.progress is not None else reported
                message = state.message or state.status
                await ctx.report_progress(reported, state.total, message)

            run_id, result = await client.run(workflow, inputs or {}, progress)
            return WorkflowResult(
                workflow=workflow, run_id=run_id, status="succeeded", result=result
            )


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
