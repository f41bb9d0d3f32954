"""Assembly of what guards every call: service auth (HTTP and stdio), audit, circuit
breakers, and their health and metrics. `app.build_gateway` calls `build_guards` once and
puts its steps into the call pipeline and its ASGI layer in front of the HTTP door."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import Metric
from pydantic import SecretStr
from starlette.middleware import Middleware as StarletteMiddleware

from archon_gateway.core.audit import AuditEvent, AuditSink, LogAuditSink
from archon_gateway.core.circuit_breaker import STATES, BreakerRegistry
from archon_gateway.core.health import ComponentRegistry, ComponentStatus
from archon_gateway.gateway.admin_policy import AdminCalls, AdminRule, AdminTools, HideAdminTools
from archon_gateway.gateway.auth.admin_token import admin_token_path, ensure_admin_token
from archon_gateway.gateway.auth.decisions import Authenticator, jwt_verifier, stdio_decision
from archon_gateway.gateway.auth.http_guard import HttpAuthMiddleware
from archon_gateway.gateway.call_steps.breaker_guard import BreakerGuard, upstream_breakers
from archon_gateway.gateway.call_steps.stdio_auth import StdioAuth
from archon_gateway.gateway.gateway_metrics import GatewayMetrics, state_gauge
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings

OwnerLookup = Callable[[str], str | None]


@dataclass
class Guards:
    breakers: BreakerRegistry
    audit: AuditSink
    http_auth: StarletteMiddleware  # the ASGI guard in front of every HTTP route
    stdio_auth: StdioAuth  # call-pipeline steps
    admin_calls: AdminCalls
    breaker_guard: BreakerGuard
    admin: AdminRule  # who may administer over HTTP (admin tools, gateway-admin events)


def build_guards(
    server: GatewayServer,
    settings: Settings,
    metrics: GatewayMetrics,
    components: ComponentRegistry,
    *,
    upstream_of: OwnerLookup,
    audit: AuditSink | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Guards:
    """`upstream_of(tool)` names the upstream serving a tool (None for native tools); each
    upstream gets a breaker for upstream-wide faults, "upstream <name>", and each of its tools
    one for its own timeouts and failures, "tool <name>" (caller errors and refusals never
    count)."""
    audit = audit or LogAuditSink()
    breakers = BreakerRegistry(
        fail_max=settings.breaker_fail_max,
        reset_timeout=settings.breaker_reset_timeout,
        enabled=settings.breakers_enabled,
        clock=clock,
    )
    components.register("breakers", _breakers_probe(breakers), critical=False)
    metrics.watch(_scrape_states(breakers, components))
    metrics.active_sessions.labels(transport="http").set_function(
        lambda: server.front.open_http_sessions()
    )

    # The local admin token exists from the first HTTP start on (the CLI reads it).
    admin_token = ensure_admin_token(settings.data_dir) if settings.serves_http else None
    admin_tools = AdminTools(server)
    server.add_transform(HideAdminTools(admin_tools))  # before the catalog's: search too
    admin = AdminRule(
        token_file=admin_token_path(settings.data_dir),
        admin_scope=settings.auth_admin_scope,
        audit=audit,
    )
    stdio = stdio_decision(
        settings.auth_stdio_require_token,
        settings.auth_stdio_token,
        settings.service_auth_token,
        settings.service_auth_extra_tokens,
    )
    if settings.serves_stdio and settings.auth_stdio_require_token:
        audit.record(
            AuditEvent(
                "accept" if stdio.accepted else "reject", "stdio", stdio.reason, stdio.principal
            )
        )
    lookup = upstream_breakers(breakers, upstream_of)
    return Guards(
        breakers=breakers,
        audit=audit,
        http_auth=_http_auth(settings, audit, metrics, admin_token),
        stdio_auth=StdioAuth(stdio, audit),
        admin_calls=AdminCalls(admin_tools, admin),
        breaker_guard=BreakerGuard(lookup),
        admin=admin,
    )


def _http_auth(
    settings: Settings,
    audit: AuditSink,
    metrics: GatewayMetrics,
    admin_token: SecretStr | None,
) -> StarletteMiddleware:
    """The ASGI guard in front of every HTTP route, configured from the auth settings."""
    authenticator = Authenticator(
        settings.effective_auth_mode,
        settings.service_auth_token,
        jwt_verifier(
            issuer=settings.auth_jwt_issuer,
            audience=settings.auth_jwt_audience,
            jwks_uri=settings.auth_jwt_jwks_uri,
            public_key=settings.auth_jwt_public_key,
            algorithm=settings.auth_jwt_algorithm,
        ),
        also_accepted=settings.service_auth_extra_tokens,
        profile_tokens=settings.service_tokens,
        profile_claim=settings.auth_jwt_profile_claim,
        admin_token=admin_token,
        admin_scope=settings.auth_admin_scope,
    )
    return StarletteMiddleware(
        HttpAuthMiddleware,
        authenticator=authenticator,
        audit=audit,
        protect_metrics=settings.auth_protect_metrics,
        allow_health_check_bypass=settings.auth_allow_health_check_bypass,
        on_reject=lambda reason: metrics.auth_rejections.labels("http", reason).inc(),
    )


def _breakers_probe(breakers: BreakerRegistry) -> Callable[[], ComponentStatus]:
    def probe() -> ComponentStatus:
        if not breakers.enabled:
            return ComponentStatus("disabled", "breakers_enabled is off")
        tripped = [
            f"{name} {item.state}"
            for name, item in breakers.snapshot().items()
            if item.state != "closed"
        ]
        if tripped:
            return ComponentStatus("degraded", ", ".join(tripped))
        return ComponentStatus("ok", f"{len(breakers)} closed")

    return probe


def _scrape_states(
    breakers: BreakerRegistry, components: ComponentRegistry
) -> Callable[[], Iterable[Metric]]:
    def collect() -> Iterable[Metric]:
        yield state_gauge(
            "archon_breaker_state",
            "Circuit breaker state (1 for the current one)",
            "breaker",
            STATES,
            {name: item.state for name, item in breakers.snapshot().items()},
        )
        yield state_gauge(
            "archon_component_state",
            "Component health as in /health (1 for the current state), upstreams included",
            "component",
            ("ok", "degraded", "down", "disabled"),
            {name: item.status for name, item in components.snapshot().items()},
        )

    return collect
