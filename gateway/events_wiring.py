"""Events as the composition root assembles them from settings: Kafka when
`kafka_bootstrap_servers` is set, else the in-process bus; the handlers, the lifecycle
events, the `events_publish` tool and the `events` health component."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from archon_gateway.core.audit import AuditSink
from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.health import ComponentRegistry
from archon_gateway.events.bus import InProcessBus
from archon_gateway.events.dispatch import Dispatcher, EventRows, RetryPolicy
from archon_gateway.events.event_metrics import EventMetrics
from archon_gateway.events.handlers import HandlerRegistry, default_handlers
from archon_gateway.events.kafka import KafkaEvents, KafkaOptions, ssl_context
from archon_gateway.events.lifecycle import LifecycleEvents
from archon_gateway.events.publish_tool import add_publish_tool
from archon_gateway.events.tool_calls import MiddlewareToolCaller
from archon_gateway.events.topics import Topics
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings


def event_source() -> str:
    return f"archon-gateway@{socket.gethostname()}"


def kafka_options(settings: Settings) -> KafkaOptions:
    """Connection options from settings (also used by `archon-gateway events tail`)."""
    assert settings.kafka_bootstrap_servers is not None
    security: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism is not None:
        security["sasl_mechanism"] = settings.kafka_sasl_mechanism
        security["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            security["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if "SSL" in settings.kafka_security_protocol:
        security["ssl_context"] = ssl_context(
            str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    session_ms = int(settings.kafka_session_timeout * 1000)
    return KafkaOptions(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.kafka_group_id,
        security=security,
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(100, session_ms // 3),
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_replication_factor,
        concurrency=settings.kafka_concurrency,
        partition_concurrency=settings.kafka_partition_concurrency,
        max_buffered=settings.kafka_max_buffered,
    )


class GatewayEvents:
    """Built early (the upstream pool and breakers report to `lifecycle`), attached to the
    server once its middleware is in place."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self.topics = Topics(settings.kafka_topic_prefix)
        self.metrics = EventMetrics(metrics.registry)
        self.source = event_source()
        self.lifecycle = LifecycleEvents(self.topics.lifecycle, self.metrics, source=self.source)
        self.transport: KafkaEvents | InProcessBus | None = None
        self.registry: HandlerRegistry | None = None

    def attach(
        self,
        server: GatewayServer,
        components: ComponentRegistry,
        breakers: BreakerRegistry,
        *,
        upstreams: bool,
        node_registry: bool = False,
        rows: EventRows | None = None,
        audit: AuditSink | None = None,
        require_admin: Callable[[str], None],
    ) -> None:
        """`node_registry`: the node_* tools are served (the store is on), so node events
        are handled; `rows`: the store's per-interval event_metrics rows; `require_admin`
        raises unless the caller may publish gateway-admin events."""
        settings = self._settings
        registry = default_handlers(
            MiddlewareToolCaller(server, settings.tool_concurrency),
            breakers,
            upstreams=upstreams,
            admin=settings.kafka_admin_events,
            nodes=node_registry,
            audit=audit,
        )
        dispatcher = Dispatcher(
            registry,
            self.topics,
            self.metrics,
            source=self.source,
            max_event_bytes=settings.kafka_max_event_bytes,
            retry=RetryPolicy(settings.kafka_max_attempts, settings.kafka_retry_backoff),
            recent_ids=settings.kafka_recent_ids,
            rows=rows,
        )
        services = registry.services()
        request_topics = [self.topics.request(service) for service in services]
        transport: KafkaEvents | InProcessBus
        if settings.kafka_bootstrap_servers:
            transport = KafkaEvents(
                kafka_options(settings),
                dispatcher,
                self.metrics,
                request_topics=request_topics,
                create_topics=self.topics.all(services),
            )
        else:
            transport = InProcessBus(dispatcher, self.metrics, request_topics=request_topics)
        self.transport, self.registry = transport, registry
        breakers.add_listener(self.lifecycle)
        components.register("events", transport.status, critical=False)
        add_publish_tool(
            server,
            transport,
            registry,
            self.topics,
            source=self.source,
            max_event_bytes=settings.kafka_max_event_bytes,
            require_admin=require_admin,
        )
        server.add_lifetime(self.running)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        assert self.transport is not None
        async with self.transport.running() as transport, self.lifecycle.running(transport):
            yield
