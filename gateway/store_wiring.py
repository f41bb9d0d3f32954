"""The store's place in the front door: built from settings, its health and metrics
registered, and the audit trail written through the existing `AuditSink` (the store itself
knows nothing of audit events: it only takes rows)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from prometheus_client import Counter

from archon_gateway.core.audit import AuditEvent, AuditSink
from archon_gateway.core.circuit_breaker import BreakerState, CircuitBreaker
from archon_gateway.core.errors import NotFound
from archon_gateway.core.health import ComponentRegistry, ComponentStatus
from archon_gateway.core.tool_family import ToolFamily
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.settings import Settings
from archon_gateway.gateway.upstream_admin import restart_audited
from archon_gateway.gateway.webhooks import Action, ActionCall
from archon_gateway.store.intervals import ConnectionMetrics
from archon_gateway.store.service import Store
from archon_gateway.store.tools import AuditTools, LineageTools, NodeRegistryTools
from archon_gateway.tools.patterns import PatternTools
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.state import DOWN_STATES, UpstreamState


def database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return f"sqlite+aiosqlite:///{settings.data_dir / 'archon.db'}"


def build_store(
    settings: Settings, metrics: GatewayMetrics, components: ComponentRegistry
) -> Store | None:
    """The store, its /health component (non-critical: tool calls work without it) and its
    counters; None when `store_enabled` is off."""
    if not settings.store_enabled:
        disabled = ComponentStatus("disabled", "store_enabled is off")
        components.register("store", lambda: disabled, critical=False)
        return None
    dropped = Counter(
        "archon_store_dropped",
        "Rows the store dropped (queue full, or unwritten at shutdown), by table",
        ["table"],
        registry=metrics.registry,
    )
    flushed = Counter(
        "archon_store_flushed",
        "Rows the store has committed to the database, by table",
        ["table"],
        registry=metrics.registry,
    )
    store = Store(
        database_url(settings),
        queue_size=settings.store_queue_size,
        batch_size=settings.store_batch_size,
        linger=settings.store_flush_interval,
        shutdown_flush=settings.store_shutdown_flush,
        migrate_wait=settings.store_migration_wait,
        retention_days={str(table): days for table, days in settings.store_retention_days.items()},
        purge_interval=settings.store_purge_interval,
        purge_batch=settings.store_purge_batch,
        on_dropped=lambda table, n: dropped.labels(table=table).inc(n),
        on_flushed=lambda table, n: flushed.labels(table=table).inc(n),
    )
    components.register("store", store.health, critical=False)
    return store


class StoreAuditSink:
    """Audit events as `security_audit_log` rows (queued, never waiting)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, event: AuditEvent) -> None:
        self.store.append(
            "security_audit_log",
            {
                "at": event.at,
                "principal": event.principal[:200],
                "action": event.kind[:64],
                "outcome": event.action,
                "reason": event.reason[:200],
                "tool": event.tool[:200],
                "transport": event.transport[:16],
                "path": event.path[:300],
                "remote": event.client[:100],
                "request_id": event.request_id[:100],
            },
        )


def store_families(store: Store, settings: Settings, patterns: PatternTools) -> list[ToolFamily]:
    """The node registry, pattern lineage (checked against `patterns`) and the admin
    views."""
    lineage = LineageTools(store, functools.partial(pattern_exists, patterns))
    patterns.record_lineage_with(functools.partial(_record_edge, lineage))
    return [
        NodeRegistryTools(store, heartbeat_timeout=settings.node_heartbeat_timeout),
        lineage,
        AuditTools(store),
    ]


async def _record_edge(lineage: LineageTools, parent: str, child: str, relation: str) -> None:
    await lineage.record(parent, child, relation, "", "")


async def pattern_exists(patterns: PatternTools, pattern_id: str) -> bool:
    service = await patterns.service()
    try:
        await service.get(pattern_id)
    except NotFound:
        return False
    return True


def webhook_actions(pool: UpstreamPool | None, audit: AuditSink) -> dict[str, Action]:
    """The gateway-owned actions a webhook may trigger (see `hook_actions`)."""
    if pool is None:
        return {}

    async def restart_upstream(call: ActionCall) -> str:
        info = await restart_audited(
            pool,
            call.argument,
            audit,
            principal=f"webhook:{call.source}",
            transport="http",
            request_id=call.delivery,
        )
        return f"upstream {call.argument} {info.state}"

    return {"restart_upstream": restart_upstream}


def upstream_connections(
    connections: ConnectionMetrics,
) -> Callable[[str, UpstreamState, UpstreamState], None]:
    """An upstream's state changes as connects (a run became ready) and failures (a start
    that did not get ready, or a ready run that died or stopped answering)."""

    def changed(name: str, old: UpstreamState, new: UpstreamState) -> None:
        if old is UpstreamState.STARTING and new is UpstreamState.READY:
            connections.connected("upstream", name)
        elif old in (UpstreamState.STARTING, UpstreamState.READY) and new in DOWN_STATES:
            connections.connected("upstream", name, ok=False)

    return changed


class BreakerConnections:
    """Each breaker's state changes, under what it guards: "upstream <name>" breakers as that
    upstream, "tool <name>" breakers (one per upstream tool) as kind "upstream_tool", the
    others (workflow coordinator, vector store) as HTTP backends."""

    def __init__(self, connections: ConnectionMetrics) -> None:
        self.connections = connections

    def state_change(self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        kind, target = breaker_target(breaker.name)
        self.connections.breaker_transition(kind, target)


def breaker_target(name: str) -> tuple[str, str]:
    for prefix, kind in (("upstream ", "upstream"), ("tool ", "upstream_tool")):
        if name.startswith(prefix):
            return kind, name.removeprefix(prefix)
    return "http_backend", name
