"""`events_publish`: produce an event from MCP (an operator, a test, an assistant)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastmcp import FastMCP
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from archon_gateway.core.errors import InvalidArgument, tool_errors
from archon_gateway.events.envelope import (
    DEFAULT_MAX_DEPTH,
    EVENT_TYPE_PATTERN,
    encode,
    json_depth,
    new_envelope,
)
from archon_gateway.events.handlers import ADMIN_SERVICE, HandlerRegistry
from archon_gateway.events.lifecycle import Publisher
from archon_gateway.events.topics import Topics

PUBLISH_TOOL = "events_publish"


class Published(BaseModel):
    event_id: str
    correlation_id: str
    topic: str


def add_publish_tool(
    server: FastMCP[Any],
    publisher: Publisher,
    registry: HandlerRegistry,
    topics: Topics,
    *,
    source: str,
    max_event_bytes: int,
    require_admin: Callable[[str], None],
) -> None:
    """`require_admin(what)` raises unless the caller may administer: a gateway-admin event
    (breaker reset/open, upstream restart) is an admin action whoever sends it."""

    @server.tool(
        name=PUBLISH_TOOL,
        annotations=ToolAnnotations(
            title="Publish an event",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def events_publish(
        event_type: Annotated[
            str,
            Field(
                pattern=EVENT_TYPE_PATTERN,
                max_length=128,
                description="e.g. codegen.validation.requested; gateway.* types go to the "
                "lifecycle topic",
            ),
        ],
        payload: Annotated[dict[str, Any], Field(description="the event's payload object")],
        key: Annotated[
            str | None,
            Field(max_length=256, description="partition key (ordering is kept per key)"),
        ] = None,
        correlation_id: Annotated[
            str | None, Field(min_length=1, max_length=128, description="default: the event id")
        ] = None,
    ) -> Published:
        """Publish one event in the gateway's envelope: a request type goes to its
        handler's request topic (the response arrives on the matching response topic with
        the same correlation_id); a gateway.* type goes to the lifecycle topic."""
        with tool_errors():
            handler = registry.for_type(event_type)
            if handler is not None and handler.service == ADMIN_SERVICE:
                require_admin(f"'{event_type}' is an admin event")
            if handler is not None:
                topic = topics.request(handler.service)
            elif event_type.startswith("gateway."):
                topic = topics.lifecycle
            else:
                known = ", ".join(sorted(t for h in registry for t in h.event_types))
                raise InvalidArgument(
                    f"no handler for event type '{event_type}' (known: {known}; or gateway.*)"
                )
            envelope = new_envelope(
                event_type, payload, source=source, correlation_id=correlation_id
            )
            value = encode(envelope)
            if len(value) > max_event_bytes:
                raise InvalidArgument(
                    f"event is {len(value)} bytes, over the {max_event_bytes}-byte limit"
                )
            if json_depth(json.dumps(payload).encode()) > DEFAULT_MAX_DEPTH - 1:
                raise InvalidArgument(f"payload nests deeper than {DEFAULT_MAX_DEPTH - 1} levels")
            await publisher.publish(topic, key.encode() if key else None, value)
            return Published(
                event_id=envelope.event_id,
                correlation_id=envelope.correlation_id,
                topic=topic,
            )
