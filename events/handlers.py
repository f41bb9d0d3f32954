"""The handler registry: which event types each handler consumes, on which request topic,
and what it does. Handlers that run a native tool call it through the gateway's middleware
(`ToolCaller`), so an event gets the same breakers, time limits and metrics as an MCP call.

Event types (request topic service in brackets):
- codegen.validation.requested [codegen-validation]: code_validate, or code_correct when
  the payload says `"fix": true`
- codegen.analysis.requested [analysis]: code_analyze
- pattern.search.requested / pattern.index.requested / pattern.reindex.requested [pattern]:
  pattern_search / pattern_index / re-embed the stored patterns named by `ids`
- mixin.recommendation.requested [mixin]: mixin_recommend
- node.register.requested / node.heartbeat.requested / node.deregister.requested
  [node-registry]: node_register / node_heartbeat / node_deregister (the store's node
  registry; only when the store is on)
- gateway.breaker.reset.requested / gateway.breaker.open.requested /
  gateway.upstream.restart.requested [gateway-admin]: close or open a circuit breaker,
  restart an upstream (through the gateway_restart_upstream tool)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from archon_gateway.core.audit import AuditSink, record_admin_action
from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.errors import InvalidArgument, NotFound
from archon_gateway.events.envelope import Envelope

MAX_REINDEX_IDS = 1000


class ToolCaller(Protocol):
    """Calls a tool by name through the middleware chain; returns its structured result or
    raises a GatewayError (see events.tool_calls)."""

    async def __call__(self, tool: str, arguments: dict[str, Any]) -> Any: ...


Handle = Callable[[Envelope], Awaitable[Any]]


@dataclass(frozen=True)
class Handler:
    """`name` is the metrics label; `service` picks the request/response topic pair."""

    name: str
    service: str
    routes: Mapping[str, Handle]  # event type -> what to do

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self.routes)


class HandlerRegistry:
    def __init__(self, handlers: Iterable[Handler] = ()) -> None:
        self._by_type: dict[str, Handler] = {}
        self._handlers: list[Handler] = []
        for handler in handlers:
            self.register(handler)

    def register(self, handler: Handler) -> None:
        for event_type in handler.routes:
            if event_type in self._by_type:
                raise ValueError(f"event type {event_type!r} already has a handler")
            self._by_type[event_type] = handler
        self._handlers.append(handler)

    def for_type(self, event_type: str) -> Handler | None:
        return self._by_type.get(event_type)

    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(handler.service for handler in self._handlers))

    def __iter__(self) -> Any:
        return iter(list(self._handlers))


def _arguments(payload: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in drop}


def _tool_route(call: ToolCaller, tool: str) -> Handle:
    async def route(event: Envelope) -> Any:
        return await call(tool, _arguments(event.payload))

    return route


def codegen_validation(call: ToolCaller) -> Handler:
    async def validate(event: Envelope) -> Any:
        fix = event.payload.get("fix", False)
        if not isinstance(fix, bool):
            raise InvalidArgument("payload.fix must be true or false")
        tool = "code_correct" if fix else "code_validate"
        return await call(tool, _arguments(event.payload, drop=("fix",)))

    return Handler(
        "codegen_validation", "codegen-validation", {"codegen.validation.requested": validate}
    )


def analysis(call: ToolCaller) -> Handler:
    return Handler(
        "analysis", "analysis", {"codegen.analysis.requested": _tool_route(call, "code_analyze")}
    )


def pattern(call: ToolCaller) -> Handler:
    async def reindex(event: Envelope) -> Any:
        ids = event.payload.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise InvalidArgument("payload.ids must be a non-empty list of pattern ids")
        if len(ids) > MAX_REINDEX_IDS:
            raise InvalidArgument(f"payload.ids: over the limit of {MAX_REINDEX_IDS} ids")
        # Re-embedding: each stored pattern is written again without its vector, so the
        # index computes a fresh one (after a model change, or a bad import).
        patterns, missing = [], []
        for pattern_id in dict.fromkeys(ids):
            try:
                stored = await call("pattern_get", {"id": pattern_id})
            except NotFound:
                missing.append(pattern_id)
                continue
            keep = ("id", "name", "text", "language", "kind", "tags", "source", "quality")
            patterns.append({key: stored[key] for key in keep if stored.get(key) is not None})
        result = await call("pattern_index", {"patterns": patterns}) if patterns else {}
        return {
            "reindexed": result.get("indexed", []),
            "failed": result.get("failed", []),
            "missing": missing,
        }

    return Handler(
        "pattern",
        "pattern",
        {
            "pattern.search.requested": _tool_route(call, "pattern_search"),
            "pattern.index.requested": _tool_route(call, "pattern_index"),
            "pattern.reindex.requested": reindex,
        },
    )


def mixin(call: ToolCaller) -> Handler:
    return Handler(
        "mixin", "mixin", {"mixin.recommendation.requested": _tool_route(call, "mixin_recommend")}
    )


def node_registry(call: ToolCaller) -> Handler:
    """Service-registry updates from nodes that speak Kafka rather than MCP: the same
    registry (and the same argument checks) as the node_* tools."""
    return Handler(
        "node_registry",
        "node-registry",
        {
            "node.register.requested": _tool_route(call, "node_register"),
            "node.heartbeat.requested": _tool_route(call, "node_heartbeat"),
            "node.deregister.requested": _tool_route(call, "node_deregister"),
        },
    )


ADMIN_SERVICE = "gateway-admin"  # its events are admin actions (events_publish checks)


def gateway_admin(
    call: ToolCaller,
    breakers: BreakerRegistry,
    *,
    upstreams: bool,
    audit: AuditSink | None = None,
) -> Handler:
    """Breaker management always; upstream restarts when the gateway runs upstreams. Each
    breaker action is an admin action: one audit event (`breaker_reset` / `breaker_open`)
    whatever its outcome; restarts are audited by the restart tool they call."""

    def record(event: Envelope, kind: str, outcome: Literal["accept", "reject"], why: str) -> None:
        record_admin_action(
            audit,
            kind,
            outcome,
            why,
            principal=f"event:{event.source}",
            transport="kafka",
            request_id=event.event_id,
        )

    def breaker_named(event: Envelope, kind: str) -> Any:
        name = event.payload.get("breaker")
        if not isinstance(name, str) or not name:
            record(event, kind, "reject", "no breaker named")
            raise InvalidArgument("payload.breaker must name a circuit breaker")
        breaker = breakers.get(name)
        if breaker is None:
            record(event, kind, "reject", f"unknown breaker '{name}'")
            known = ", ".join(sorted(breakers.snapshot())) or "none yet"
            raise NotFound(f"no circuit breaker named '{name}' (breakers: {known})")
        return breaker

    async def reset(event: Envelope) -> Any:
        breaker = breaker_named(event, "breaker_reset")
        breaker.reset()
        record(event, "breaker_reset", "accept", breaker.name)
        return breakers.snapshot()[breaker.name].as_dict()

    async def trip(event: Envelope) -> Any:
        breaker = breaker_named(event, "breaker_open")
        breaker.trip()
        record(event, "breaker_open", "accept", breaker.name)
        return breakers.snapshot()[breaker.name].as_dict()

    async def restart(event: Envelope) -> Any:
        name = event.payload.get("upstream")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("payload.upstream must name an upstream")
        return await call("gateway_restart_upstream", {"name": name})

    routes: dict[str, Handle] = {
        "gateway.breaker.reset.requested": reset,
        "gateway.breaker.open.requested": trip,
    }
    if upstreams:
        routes["gateway.upstream.restart.requested"] = restart
    return Handler("gateway_admin", ADMIN_SERVICE, routes)


def default_handlers(
    call: ToolCaller,
    breakers: BreakerRegistry,
    *,
    upstreams: bool,
    admin: bool,
    nodes: bool = False,
    audit: AuditSink | None = None,
) -> HandlerRegistry:
    handlers = [codegen_validation(call), analysis(call), pattern(call), mixin(call)]
    if nodes:
        handlers.append(node_registry(call))
    if admin:
        handlers.append(gateway_admin(call, breakers, upstreams=upstreams, audit=audit))
    return HandlerRegistry(handlers)
