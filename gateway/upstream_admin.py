"""Upstream supervision as the rest of the gateway shows it: component health, metrics,
per-upstream details (/health, gateway_info) and the `gateway_restart_upstream` tool."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import anyio
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_request
from mcp_types import ToolAnnotations
from prometheus_client.core import CounterMetricFamily, Metric

from archon_gateway.core.audit import AuditSink, record_admin_action
from archon_gateway.core.errors import tool_errors
from archon_gateway.core.health import ComponentRegistry, ComponentStatus
from archon_gateway.core.tool_family import ADMIN_TAG
from archon_gateway.gateway.gateway_metrics import GatewayMetrics, state_gauge
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.state import UpstreamInfo, UpstreamState

RESTART_TOOL = "gateway_restart_upstream"


def upstream_details(pool: UpstreamPool) -> dict[str, UpstreamInfo]:
    return {name: upstream.info() for name, upstream in pool.upstreams.items()}


def upstream_health(pool: UpstreamPool) -> dict[str, dict[str, Any]]:
    """The same details as JSON for /health."""
    return {name: info.model_dump() for name, info in upstream_details(pool).items()}


def watch_upstreams(
    pool: UpstreamPool, metrics: GatewayMetrics, components: ComponentRegistry
) -> None:
    """One non-critical component per upstream, and its state and restarts as metrics."""
    for name in pool.upstreams:
        track_upstream(components, pool, name)

    def collect() -> Iterable[Metric]:
        yield state_gauge(
            "archon_upstream_state",
            "Upstream supervision state (1 for the current one)",
            "upstream",
            [str(state) for state in UpstreamState],
            {name: str(upstream.state) for name, upstream in pool.upstreams.items()},
        )
        restarts = CounterMetricFamily(
            "archon_upstream_restarts", "Upstream restarts since start", labels=["upstream"]
        )
        for name, upstream in pool.upstreams.items():
            restarts.add_metric([name], upstream.restarts)
        yield restarts

    metrics.watch(collect)


def track_upstream(components: ComponentRegistry, pool: UpstreamPool, name: str) -> None:
    """The upstream's health component, read through the pool: a reload may replace the
    upstream behind the name."""

    def status() -> ComponentStatus:
        upstream = pool.upstreams.get(name)
        return upstream.status() if upstream is not None else ComponentStatus("disabled")

    components.register(f"upstream:{name}", status, critical=False)


def add_upstream_admin_tools(
    server: FastMCP, pool: UpstreamPool, audit: AuditSink | None = None
) -> None:
    """The restart tool; each restart is an admin action in the audit trail."""

    @server.tool(
        name=RESTART_TOOL,
        tags={ADMIN_TAG},
        annotations=ToolAnnotations(
            title="Restart an upstream",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    async def restart_upstream(name: str) -> UpstreamInfo:
        """Restart one stdio upstream now (calls in flight on it fail), skipping any backoff
        or crash-loop wait, and wait for it to start. Returns its state afterwards."""
        with tool_errors():
            return await restart_audited(
                pool,
                name,
                audit,
                principal=request_principal(),
                transport=request_transport(),
                tool=RESTART_TOOL,
            )


async def restart_audited(
    pool: UpstreamPool,
    name: str,
    audit: AuditSink | None,
    *,
    principal: str,
    transport: str,
    tool: str = "",
    request_id: str = "",
) -> UpstreamInfo:
    """Restart an upstream (the tool, a webhook action): an admin action, so one
    `upstream_restart` audit row whatever the outcome (an unknown name is a reject)."""

    def record(outcome: Literal["accept", "reject"], reason: str) -> None:
        record_admin_action(
            audit,
            "upstream_restart",
            outcome,
            reason,
            principal=principal,
            transport=transport,
            tool=tool,
            request_id=request_id,
        )

    try:
        upstream = pool.get(name)
        # Bounded: a slow stop plus a slow start; the state says how far it got.
        with anyio.move_on_after(upstream.manifest.startup_timeout + 10):
            await upstream.restart()
    except Exception as exc:
        record("reject", str(exc) or type(exc).__name__)
        raise
    info = upstream.info()
    record("accept", f"upstream {name} {info.state}")
    return info


def request_principal() -> str:
    """Who asked: the HTTP auth decision's principal, or the local user on stdio."""
    try:
        return str(getattr(get_http_request().state, "principal", "anonymous"))
    except RuntimeError:
        return "local"


def request_transport() -> str:
    try:
        get_http_request()
    except RuntimeError:
        return "stdio"
    return "http"
