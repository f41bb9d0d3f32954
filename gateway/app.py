"""The composition root: the one place that assembles a gateway from settings.

Everything below this module takes plain arguments, so tests can build a gateway with
exactly the parts they need. Later parts (upstreams, store, events, native tool families)
plug in here.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.middleware import Middleware as StarletteMiddleware

from archon_gateway.catalog.view import CatalogView
from archon_gateway.core import sdk_compat
from archon_gateway.core.audit import AuditSink, FanOutAuditSink, LogAuditSink
from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.health import ComponentRegistry, ComponentStatus
from archon_gateway.core.tool_family import ToolFamily
from archon_gateway.core.version import __version__
from archon_gateway.gateway.call_pipeline import CallPipeline, CallSteps, PipelineMiddleware
from archon_gateway.gateway.call_steps.admission import Admission
from archon_gateway.gateway.call_steps.call_metrics import CountCalls, count_sessions
from archon_gateway.gateway.call_steps.connection_log import ConnectionLog
from archon_gateway.gateway.call_steps.drain import InFlightCalls
from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
from archon_gateway.gateway.call_steps.session_log import SessionLog
from archon_gateway.gateway.call_steps.stdio_auth import StdioRequestGate
from archon_gateway.gateway.call_steps.timeout import TimeLimit, TimeLimits
from archon_gateway.gateway.catalog_wiring import CALL_TOOL_LIMIT, add_catalog, report_at_start
from archon_gateway.gateway.client_sessions import ClientSessions
from archon_gateway.gateway.events_wiring import GatewayEvents
from archon_gateway.gateway.gateway_info import add_admin_tools
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.guards import Guards, build_guards
from archon_gateway.gateway.host_guard import HostRules
from archon_gateway.gateway.http import add_http_routes
from archon_gateway.gateway.lane.lane_wiring import add_lane
from archon_gateway.gateway.live_config.admin import add_reload_tool
from archon_gateway.gateway.live_config.configuration import (
    ConfigSource,
    Configuration,
    layered_manifests,
)
from archon_gateway.gateway.live_config.reloader import ConfigReloader
from archon_gateway.gateway.mcp_server import FrontDoor, GatewayServer
from archon_gateway.gateway.passthrough import serve_passthrough
from archon_gateway.gateway.session_registry import SessionRegistry
from archon_gateway.gateway.settings import Settings
from archon_gateway.gateway.store_wiring import (
    BreakerConnections,
    StoreAuditSink,
    build_store,
    store_families,
    upstream_connections,
    webhook_actions,
)
from archon_gateway.gateway.upstream_admin import (
    add_upstream_admin_tools,
    upstream_details,
    upstream_health,
    watch_upstreams,
)
from archon_gateway.gateway.webhooks import Webhooks
from archon_gateway.store.intervals import ConnectionMetrics, EventMetrics
from archon_gateway.store.service import Store
from archon_gateway.tools.codegen import CodegenTools
from archon_gateway.tools.patterns import PatternTools
from archon_gateway.tools.workflow import WorkflowTools
from archon_gateway.upstreams.exchanges import Exchanges
from archon_gateway.upstreams.manifest import load_manifests, manifest_folders
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.provider import UpstreamProvider
from archon_gateway.upstreams.restarts import RestartPolicy
from archon_gateway.upstreams.state import UpstreamInfo, UpstreamState
from archon_gateway.upstreams.supervisor import StateListener

log = logging.getLogger(__name__)
IntervalsT = TypeVar("IntervalsT", ConnectionMetrics, EventMetrics)

SERVER_NAME = "archon"
INSTRUCTIONS = (
    "Archon Gateway: one MCP server in front of many tools. Call gateway_info to see what "
    "this gateway serves and how healthy it is."
)


def build_gateway(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    families: Sequence[ToolFamily] | None = None,
    source: ConfigSource | None = None,
) -> GatewayServer:
    """`environ` is what upstreams may inherit from (only names their manifests allow);
    `clock` drives the circuit breakers (tests inject one); `families` replaces the native
    tool families built from settings (tests give their own); `source` re-reads the
    settings on a reload (default: these settings again, with the manifests re-read)."""
    metrics = GatewayMetrics()
    components = _base_components(settings.transports)
    environ = os.environ if environ is None else environ
    store = build_store(settings, metrics, components)
    # Connects, failures, calls and breaker transitions per upstream, backend and database.
    interval = settings.store_metrics_interval
    connections = ConnectionMetrics(store, interval=interval) if store is not None else None
    events = GatewayEvents(settings, metrics)
    pool, running, start_problems = _upstream_pool(
        settings, environ, metrics, clock, events, connections
    )
    server = GatewayServer(SERVER_NAME, instructions=INSTRUCTIONS, version=__version__)
    sdk_compat.refuse_before_initialize(server)
    if store is not None and connections is not None:
        server.add_lifetime(store.running)  # first in, last out: it records the others' exits
        store.report_connections(_running(server, connections))
    guards = build_guards(
        server,
        settings,
        metrics,
        components,
        upstream_of=pool.upstream_of if pool else _not_upstream,
        audit=FanOutAuditSink(LogAuditSink(), StoreAuditSink(store)) if store else None,
        clock=clock,
    )
    native_namespaces: dict[str, str] = {}  # native tool -> its family, added below
    catalog, profile_paths = add_catalog(
        server,
        settings,
        lambda tool: (
            (pool.upstream_of(tool) if pool else None) or native_namespaces.get(tool, SERVER_NAME)
        ),
    )
    calls = _call_path(server, settings, metrics, guards, store, pool, connections)
    if connections is not None:
        guards.breakers.add_listener(BreakerConnections(connections))
    upstreams = _serve_upstreams(server, pool, metrics, components, guards.audit, calls.sessions)
    # Outermost first: service auth, then the profile path (it reads what auth decided).
    http_outer = (guards.http_auth, profile_paths)
    server.front = _front_door(server, settings, metrics, http_outer, calls, pool, catalog)
    server.front.host_rules = host_rules(settings)
    reloader = ConfigReloader(
        source or ConfigSource(lambda: settings),
        running,
        pool=pool,
        catalog=catalog,
        breakers=guards.breakers,
        components=components,
        metrics=metrics,
        audit=guards.audit,
        notify_others=upstreams.others_changed,
        start_problems=start_problems,
        time_limits=calls.time_limits,
    )
    server.add_lifetime(reloader.running)
    add_reload_tool(server, reloader)
    # Webhook actions and Kafka handlers count into one event_metrics interval writer.
    event_rows = _running(server, EventMetrics(store, interval=interval)) if store else None
    if store is not None and settings.hook_secrets:
        _add_webhooks(server, settings, store, guards.audit, pool, event_rows)
    _add_reports(server, settings, metrics, components, guards.breakers, upstreams, catalog)
    if families is None:
        families = tool_families(settings, guards.breakers, store, connections)
    calls.time_limits.add_native(add_tool_families(server, components, families))
    events.attach(
        server,
        components,
        guards.breakers,
        upstreams=pool is not None,
        node_registry=store is not None,  # the node_* tools exist only with the store
        rows=event_rows,
        audit=guards.audit,  # breaker resets/opens by event are admin actions
        require_admin=guards.admin.require,
    )
    native_namespaces.update(family_namespaces(families))
    if pool is None or not settings.lazy_upstreams:  # lazy: checked at the first listing
        report_at_start(server, catalog, upstreams.tool_names, pool.settled if pool else None)
    return server


@dataclass(frozen=True)
class _CallPath:
    """What every tool call runs through, and what the lane and reloads need of it."""

    pipeline: CallPipeline
    sessions: SessionRegistry
    drain: InFlightCalls
    time_limits: TimeLimits


def _call_path(
    server: GatewayServer,
    settings: Settings,
    metrics: GatewayMetrics,
    guards: Guards,
    store: Store | None,
    pool: UpstreamPool | None,
    connections: ConnectionMetrics | None,
) -> _CallPath:
    """The session registry and the call pipeline (its steps in gateway/call_pipeline.py's
    order), which FastMCP reaches through one adapter middleware."""
    time_limits = TimeLimits(settings.tool_timeout, pool.timeout_for if pool else _not_upstream)
    time_limits.add_native(CALL_TOOL_LIMIT)  # + the families' own, once they are added
    sessions = SessionRegistry()
    server.add_middleware(sessions)
    count_sessions(metrics, sessions)
    drain = InFlightCalls()
    steps = CallSteps(
        drain=drain,
        errors=TranslateErrors(),
        metrics=CountCalls(metrics),
        stdio_auth=guards.stdio_auth,
        admin=guards.admin_calls,
        breakers=guards.breaker_guard,
        admission=Admission(settings.tool_concurrency),
        time_limit=TimeLimit(time_limits.limit_for),
    )
    _add_store_logs(steps, server, store, sessions, pool, connections)
    pipeline = CallPipeline(steps)
    upstream_of = pool.upstream_of if pool else _not_upstream
    server.add_middleware(PipelineMiddleware(pipeline, sessions=sessions, upstream_of=upstream_of))
    server.add_middleware(StdioRequestGate(guards.stdio_auth))
    return _CallPath(pipeline, sessions, drain, time_limits)


def _front_door(
    server: GatewayServer,
    settings: Settings,
    metrics: GatewayMetrics,
    http_outer: tuple[StarletteMiddleware, ...],
    calls: _CallPath,
    pool: UpstreamPool | None,
    catalog: CatalogView,
) -> FrontDoor:
    """What the transports take: the HTTP door's layers, the lane and the drain step."""
    if not settings.fast_lane:
        return FrontDoor(http_outer=http_outer, drain=calls.drain)
    lane = add_lane(
        server,
        calls.pipeline,
        calls.sessions,
        pool,
        catalog.shows,
        metrics,
        mcp_path=settings.http_path,
    )
    return FrontDoor(
        http_outer=http_outer, http_inner=(lane.http,), stdio_tap=lane.stdio, drain=calls.drain
    )


def _add_webhooks(
    server: GatewayServer,
    settings: Settings,
    store: Store,
    audit: AuditSink,
    pool: UpstreamPool | None,
    event_rows: EventMetrics | None,
) -> None:
    Webhooks(
        store,
        audit,
        secrets=settings.hook_secrets,
        actions=settings.hook_actions,
        handlers=webhook_actions(pool, audit),
        max_bytes=settings.hook_max_bytes,
        tolerance=settings.hook_tolerance,
        events=event_rows,
    ).install(server)


def _add_reports(
    server: GatewayServer,
    settings: Settings,
    metrics: GatewayMetrics,
    components: ComponentRegistry,
    breakers: BreakerRegistry,
    upstreams: _UpstreamViews,
    catalog: CatalogView,
) -> None:
    """gateway_info (the admin tool), /health and /metrics."""
    add_admin_tools(
        server,
        settings.transports,
        metrics,
        components,
        upstreams.infos,
        upstreams.tool_names,
        profile_counts=catalog.tool_counts,
    )
    add_http_routes(
        server,
        metrics,
        components,
        breakers=breakers,
        protect_details=settings.auth_protect_health_details,
        details=upstreams.details,
        profiles=functools.partial(_profile_counts, server, catalog, upstreams.tool_names),
    )


def _add_store_logs(
    steps: CallSteps,
    server: GatewayServer,
    store: Store | None,
    sessions: SessionRegistry,
    pool: UpstreamPool | None,
    connections: ConnectionMetrics | None,
) -> None:
    """The session log and, with upstreams, the per-upstream call log."""
    if store is None:
        return
    steps.session_log = SessionLog(store, sessions)
    server.add_lifetime(steps.session_log.running)
    if pool is not None and connections is not None:
        steps.upstream_log = ConnectionLog(connections)


def _running(server: GatewayServer, intervals: IntervalsT) -> IntervalsT:
    server.add_lifetime(intervals.running)
    return intervals


async def _profile_counts(
    server: GatewayServer, catalog: CatalogView, upstream_names: Callable[[], list[str]]
) -> dict[str, dict[str, int | str]]:
    """Each profile's mode and tool counts (upstream tools as last listed)."""
    native = [tool.name for tool in await server.local_provider.list_tools()]
    return catalog.tool_counts([*native, *upstream_names()])


def family_namespaces(families: Iterable[ToolFamily]) -> dict[str, str]:
    """Each native tool's namespace for search: its family's package (`codegen`, ...)."""
    namespaces: dict[str, str] = {}
    for family in families:
        parts = type(family).__module__.split(".")
        namespace = parts[-2] if len(parts) > 1 else SERVER_NAME
        namespaces.update({tool.name: namespace for tool in family.tools()})
    return namespaces


@dataclass(frozen=True)
class _UpstreamViews:
    """What the admin tool and /health show of the upstreams (nothing without a pool)."""

    infos: Callable[[], dict[str, UpstreamInfo]] = dict
    tool_names: Callable[[], list[str]] = list
    details: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # Tells clients to list resources and prompts again (a reload changed the upstreams).
    others_changed: Callable[[], Awaitable[None]] | None = None


def _serve_upstreams(
    server: GatewayServer,
    pool: UpstreamPool | None,
    metrics: GatewayMetrics,
    components: ComponentRegistry,
    audit: AuditSink,
    sessions: SessionRegistry,
) -> _UpstreamViews:
    """Serve the pool's tools, its admin tool and health; tell clients of catalog changes."""
    if pool is None:
        disabled = ComponentStatus("disabled", "enable_external_gateway is off")
        components.register("upstreams", lambda: disabled)
        return _UpstreamViews()
    watch_upstreams(pool, metrics, components)
    clients = ClientSessions(sessions)
    serve_passthrough(server, pool, clients)  # resources, prompts, logs, subscriptions
    pool.on_tools_changed(clients.tools_changed)
    server.add_lifetime(pool.running)
    # 2026-07-28 clients answer upstreams' questions in later rounds of their tool calls.
    exchanges = Exchanges(pool.client_request_limit)
    server.add_lifetime(exchanges.running)
    provider = UpstreamProvider(pool, exchanges)
    server.add_provider(provider)
    server.add_completion_handler(provider.complete)
    add_upstream_admin_tools(server, pool, audit)
    return _UpstreamViews(
        infos=functools.partial(upstream_details, pool),
        # As last listed: asking about the gateway must not start lazy upstreams.
        tool_names=lambda: [tool.exposed_name for _, tool in pool.listed()],
        details={"upstreams": functools.partial(upstream_health, pool)},
        others_changed=functools.partial(_others_changed, clients),
    )


async def _others_changed(clients: ClientSessions) -> None:
    await clients.list_changed("resources")
    await clients.list_changed("prompts")


def _base_components(served: list[str]) -> ComponentRegistry:
    components = ComponentRegistry()
    components.register("native_tools", lambda: ComponentStatus("ok"))
    for transport in ("stdio", "http"):
        components.register(transport, _transport_probe(transport, served))
    return components


def tool_families(
    settings: Settings,
    breakers: BreakerRegistry,
    store: Store | None = None,
    connections: ConnectionMetrics | None = None,
) -> list[ToolFamily]:
    """The native tool families, in listing order (the store's when there is a store)."""
    patterns = PatternTools(
        settings.data_dir / "patterns",
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key,
        collection=settings.patterns_collection,
        batch_size=settings.patterns_batch_size,
        embed_timeout=settings.patterns_embed_timeout,
        breakers=breakers,
        max_request_text_bytes=settings.patterns_max_request_text_bytes,
    )
    families: list[ToolFamily] = [
        CodegenTools(
            max_input_bytes=settings.codegen_max_input_bytes,
            ruff_timeout=settings.codegen_ruff_timeout,
            workers=settings.codegen_workers,
            offload_bytes=settings.codegen_offload_bytes,
        ),
        WorkflowTools(
            settings.workflow_coordinator_url,
            timeout=settings.workflow_timeout,
            breakers=breakers,
            connections=connections,
        ),
        patterns,
    ]
    if store is not None:
        families.extend(store_families(store, settings, patterns))
    return families


def add_tool_families(
    server: GatewayServer, components: ComponentRegistry, families: Iterable[ToolFamily]
) -> dict[str, float]:
    """Add each family's tools to `server`, enter its lifespan while the server runs and
    register its health probes; returns the families' time limits (tool -> seconds)."""
    limits: dict[str, float] = {}
    for family in families:
        for tool in family.tools():
            server.add_tool(tool)
        server.add_lifetime(family.lifespan)
        for probe in family.health_probes():
            components.register(probe.name, probe.probe, critical=probe.critical)
        limits.update(family.time_limits())
    return limits


def _transport_probe(name: str, served: list[str]) -> Callable[[], ComponentStatus]:
    status = (
        ComponentStatus("ok")
        if name in served
        else ComponentStatus("disabled", f"not served (use --transport {name} or both)")
    )
    return lambda: status


def _not_upstream(tool: str) -> None:
    """Without upstreams no tool has an upstream, nor an upstream's time limit."""
    return None


def _upstream_pool(
    settings: Settings,
    environ: Mapping[str, str],
    metrics: GatewayMetrics,
    clock: Callable[[], float],
    events: GatewayEvents,
    connections: ConnectionMetrics | None = None,
) -> tuple[UpstreamPool | None, Configuration, list[str]]:
    """The pool (None with upstreams off), the configuration it runs and the manifests
    that could not be used (logged; the valid ones are served)."""
    if not settings.enable_external_gateway:
        return None, Configuration(settings), []
    found = load_manifests(manifest_folders(settings.manifests_dir, settings.data_dir))
    for problem in found.problems:
        log.error("ignoring manifest %s", problem)
    manifests = layered_manifests(settings, found)
    pool = UpstreamPool(
        manifests,
        gateway_env=environ,
        log_dir=settings.data_dir / "logs" / "upstreams",
        default_timeout=settings.tool_timeout,
        list_wait=settings.upstream_list_wait,
        policy=restart_policy(settings),
        clock=clock,
        pinged=lambda name, seconds: metrics.upstream_ping.labels(upstream=name).observe(seconds),
        client_request_limit=settings.upstream_client_request_timeout,
        state_changed=_state_listener(events, connections),
    )
    running = Configuration(settings, {manifest.name: manifest for manifest in manifests})
    return pool, running, [str(problem) for problem in found.problems]


def _state_listener(events: GatewayEvents, connections: ConnectionMetrics | None) -> StateListener:
    """An upstream's state changes, announced as lifecycle events and (with the store)
    counted as connects and failures."""
    count = upstream_connections(connections) if connections is not None else None

    def changed(name: str, old: UpstreamState, new: UpstreamState, error: str | None) -> None:
        events.lifecycle.upstream_state_changed(name, str(new), error)
        if count is not None:
            count(name, old, new)

    return changed


def restart_policy(settings: Settings) -> RestartPolicy:
    idle = settings.upstream_idle_minutes
    return RestartPolicy(
        backoff_initial=settings.upstream_restart_backoff,
        backoff_max=settings.upstream_restart_backoff_max,
        crash_loop_after=settings.upstream_crash_loop_restarts,
        crash_loop_window=settings.upstream_crash_loop_window,
        crash_loop_retry=settings.upstream_crash_loop_retry,
        ping_interval=settings.upstream_ping_interval,
        ping_timeout=settings.upstream_ping_timeout,
        missed_pings=settings.upstream_missed_pings,
        idle_shutdown=idle * 60 if idle is not None else None,
        keep_tools_when_down=settings.upstream_keep_tools_when_down,
        lazy=settings.lazy_upstreams,
    )


def host_rules(settings: Settings) -> HostRules:
    """Allowed Host/Origin values for the HTTP listener (the CLI checks them at start)."""
    return HostRules(
        allowed_hosts=tuple(settings.allowed_hosts),
        allowed_origins=tuple(settings.allowed_origins),
        auth_required=settings.effective_auth_mode != "none",
    )
