"""The client side of MCP's older HTTP+SSE transport (2024-11-05), as an `RpcConnection`
transport: one GET event stream carries everything the server sends (its first event names
the URL to POST messages to); each message we send is one POST answered 202. The stream
ending is the connection ending (the supervisor reconnects with backoff).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
from anyio.abc import TaskGroup

from archon_gateway.core.errors import UpstreamCallFailed, UpstreamConnectionLost
from archon_gateway.upstreams.remote.http_transport import HttpTransport
from archon_gateway.upstreams.remote.sse_events import OversizedEvent, sse_events

log = logging.getLogger(__name__)

_TIMEOUT = httpx.Timeout(10.0, read=None)
_POST_TIMEOUT = httpx.Timeout(30.0)


class SseTransport(HttpTransport):
    def __init__(
        self, name: str, url: str, headers: dict[str, str], max_message_bytes: int
    ) -> None:
        super().__init__(name, url, headers, max_message_bytes)
        self._endpoint: str | None = None
        self._endpoint_known = anyio.Event()

    def _started(self, tg: TaskGroup) -> None:
        tg.start_soon(self._stream)

    async def send(self, message: dict[str, Any], data: bytes) -> None:
        if self._inbox.lost is not None:
            raise UpstreamConnectionLost(self._inbox.lost)
        await self._endpoint_known.wait()
        if self._endpoint is None:
            raise UpstreamConnectionLost(self._inbox.lost or "closed its event stream")
        try:
            response = await self._client.post(
                self._endpoint,
                content=data,
                headers={"content-type": "application/json"},
                timeout=_POST_TIMEOUT,
            )
        except httpx.TransportError as exc:
            raise UpstreamConnectionLost(f"is unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            failure = UpstreamCallFailed(
                f"upstream '{self.name}' failed the request "
                f"(HTTP {response.status_code} {response.reason_phrase})"
            )
            if response.status_code == 404:  # the server no longer knows this stream
                raise UpstreamConnectionLost("forgot the gateway's session (HTTP 404)")
            if "id" in message and "method" in message:
                await self._inbox.fail(message["id"], failure)
            else:
                log.warning("%s: a message was not accepted: %s", self.name, failure)

    async def _stream(self) -> None:
        reason = "closed its event stream"
        try:
            async with self._client.stream(
                "GET", self.url, headers={"accept": "text/event-stream"}, timeout=_TIMEOUT
            ) as response:
                if response.status_code != 200:
                    reason = f"refused the event stream (HTTP {response.status_code})"
                    if response.status_code in (401, 403):
                        reason += "; check the headers in its manifest"
                    return
                async for event in sse_events(response.aiter_bytes(), self.max_message_bytes):
                    if isinstance(event, OversizedEvent):
                        log.warning(
                            "%s: dropped a %d-byte message over the %d-byte limit",
                            self.name,
                            event.size,
                            self.max_message_bytes,
                        )
                    elif event.event == "endpoint":
                        self._set_endpoint(event.data.decode(errors="replace").strip())
                    elif event.event == "message":
                        await self._inbox.frame(event.data, None)
        except httpx.TransportError as exc:
            reason = f"is unreachable ({type(exc).__name__})"
        finally:
            self._inbox.lose(reason)
            self._endpoint_known.set()

    def _set_endpoint(self, path: str) -> None:
        endpoint = urljoin(self.url, path)
        if urlsplit(endpoint).netloc != urlsplit(self.url).netloc:
            # Messages carry the manifest's headers: never send them to another origin.
            log.warning("%s: ignoring an endpoint on another host", self.name)
            return
        self._endpoint = endpoint
        self._endpoint_known.set()
