"""Opening a session with a remote upstream (streamable HTTP or SSE): connect, initialize
within the startup timeout, and keep the connection for the block."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import anyio

from archon_gateway.core.errors import (
    GatewayError,
    UpstreamStartTimeout,
    UpstreamUnavailable,
)
from archon_gateway.upstreams.connection import (
    NotificationHandler,
    RequestHandler,
    RpcConnection,
    answer_locally,
    serving,
)
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.remote.sse import SseTransport
from archon_gateway.upstreams.remote.streamable_http import StreamableHttpTransport
from archon_gateway.upstreams.session import UpstreamSession, _initialize

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_remote_session(
    manifest: Manifest,
    headers: Mapping[str, str],
    *,
    on_notification: NotificationHandler = lambda method, params, related: None,
    on_request: RequestHandler = answer_locally,
) -> AsyncIterator[UpstreamSession]:
    """Connect and initialize; UpstreamUnavailable says why not (never with header values).
    When the connection is lost later, every waiting call fails at once."""
    assert manifest.url is not None
    transport: StreamableHttpTransport | SseTransport
    if manifest.remote_transport == "sse":
        transport = SseTransport(
            manifest.name, manifest.url, dict(headers), manifest.max_message_bytes
        )
    else:
        transport = StreamableHttpTransport(
            manifest.name, manifest.url, dict(headers), manifest.max_message_bytes
        )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(transport)
        connection = RpcConnection(
            manifest.name, transport, manifest.max_message_bytes, on_notification, on_request
        )
        await stack.enter_async_context(serving(connection))
        try:
            with anyio.fail_after(manifest.startup_timeout):
                server_info, capabilities = await _initialize(connection)
        except TimeoutError as exc:
            raise UpstreamStartTimeout(
                f"upstream '{manifest.name}' did not answer initialize within "
                f"{manifest.startup_timeout:g} s at {_where(manifest.url)}"
            ) from exc
        except GatewayError as exc:
            raise UpstreamUnavailable(
                f"upstream '{manifest.name}' failed to initialize at {_where(manifest.url)}: "
                f"{_without_name(str(exc), manifest.name)}"
            ) from exc
        log.info(
            "upstream %s ready (%s %s, %s %s)",
            manifest.name,
            manifest.remote_transport,
            _where(manifest.url),
            server_info.get("name", "?"),
            server_info.get("version", "?"),
        )
        yield UpstreamSession(manifest, connection, None, server_info, capabilities)


def _where(url: str) -> str:
    """The URL without its query (which may carry a key)."""
    return url.split("?", 1)[0]


def _without_name(message: str, name: str) -> str:
    return message.removeprefix(f"upstream '{name}' ")
