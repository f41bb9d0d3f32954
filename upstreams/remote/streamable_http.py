"""The client side of MCP's streamable HTTP transport, as an `RpcConnection` transport.

Why by hand over httpx (not the SDK's client): the gateway must control what wedges
proxies. Each request is one POST whose answer (JSON, or an SSE stream carrying progress,
server requests and finally the reply) is read in its own task, so a slow call holds
nothing else up; a request the caller abandons has its POST closed and the server told
(`notifications/cancelled`, sent by the connection). When the server has forgotten our
session (404, or the reference servers' 400 "No valid session ID"), the transport
initializes again once and replays the request, so the caller sees one successful call.
Every body and event is bounded by `max_message_bytes`; transport failures (refused,
reset) end the connection, which the supervisor reconnects with backoff.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import httpx

from archon_gateway.core.errors import (
    GatewayError,
    UpstreamCallFailed,
    UpstreamConnectionLost,
    UpstreamUnavailable,
)
from archon_gateway.upstreams.remote.http_transport import HttpTransport
from archon_gateway.upstreams.remote.sse_events import OversizedEvent, sse_events
from archon_gateway.upstreams.transport import oversized_reply

log = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"
# Connect and write limits; reads have none (a tool may stream for as long as its time
# limit, which the gateway enforces by cancelling the call).
_TIMEOUT = httpx.Timeout(10.0, read=None)
_CLOSE_LIMIT = 2.0  # DELETE of the session at close
_ERROR_BODY_LIMIT = 4096
_LISTEN_BACKOFF_MAX = 30.0


class StreamableHttpTransport(HttpTransport):
    """Use as an async context manager (it owns the HTTP client and the POST tasks); the
    connection's `serve()` runs `receive()`."""

    def __init__(
        self, name: str, url: str, headers: dict[str, str], max_message_bytes: int
    ) -> None:
        super().__init__(name, url, headers, max_message_bytes)
        self._session_id: str | None = None
        self._protocol_version: str | None = None
        self._initialize: dict[str, Any] | None = None
        self._renew_lock = anyio.Lock()
        self._renewals = 0
        self._posts: dict[Any, anyio.CancelScope] = {}
        self._listening = False

    @property
    def session_id(self) -> str | None:
        return self._session_id

    async def _closing(self) -> None:
        await self._end_session()

    async def send(self, message: dict[str, Any], data: bytes) -> None:
        if self._inbox.lost is not None:
            raise UpstreamConnectionLost(self._inbox.lost)
        method = message.get("method")
        if method is not None and "id" in message:
            if method == "initialize":
                self._initialize = message
            assert self._tg is not None
            self._tg.start_soon(self._request, message["id"], data)
            return
        if method == "notifications/cancelled":
            # Free the abandoned POST at once; the notice below tells the server.
            scope = self._posts.pop(message.get("params", {}).get("requestId"), None)
            if scope is not None:
                scope.cancel()
        try:
            await self._exchange(data, None)
        except UpstreamConnectionLost:
            raise
        except GatewayError as exc:
            log.warning("%s: %s was not accepted: %s", self.name, method or "a reply", exc)
        if method == "notifications/initialized" and not self._listening:
            self._listening = True
            assert self._tg is not None
            self._tg.start_soon(self._listen)

    # -- requests --------------------------------------------------------------------------

    async def _request(self, request_id: Any, data: bytes) -> None:
        with anyio.CancelScope() as scope:
            self._posts[request_id] = scope
            try:
                await self._exchange(data, request_id)
            except UpstreamConnectionLost as exc:
                self._inbox.lose(exc.reason)
            except GatewayError as exc:
                await self._inbox.fail(request_id, exc)
            finally:
                self._posts.pop(request_id, None)

    async def _exchange(self, data: bytes, related: Any, *, may_renew: bool = True) -> None:
        """POST one message and pass on what comes back; renew an expired session once."""
        session = self._session_id
        async with self._post(data) as response:
            if not (session is not None and await self._session_expired(response)):
                await self._read_answer(response, related)
                return
        if not may_renew:
            raise UpstreamConnectionLost("forgot the gateway's session again right after a new one")
        await self._renew(session)
        await self._exchange(data, related, may_renew=False)

    @asynccontextmanager
    async def _post(
        self, data: bytes, session: str | bool | None = True
    ) -> AsyncIterator[httpx.Response]:
        """POST `data` in the current session (`session=True`), or in the one given."""
        session = self._session_id if session is True else session
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if isinstance(session, str):
            headers[SESSION_HEADER] = session
        if self._protocol_version is not None:
            headers[VERSION_HEADER] = self._protocol_version
        try:
            async with self._client.stream(
                "POST", self.url, content=data, headers=headers, timeout=_TIMEOUT
            ) as response:
                yield response
        except httpx.TransportError as exc:
            raise UpstreamConnectionLost(f"is unreachable ({type(exc).__name__})") from exc

    async def _session_expired(self, response: httpx.Response) -> bool:
        """404 is the spec's answer for an unknown session; the reference servers answer
        400 with a JSON-RPC error about the session id instead."""
        if response.status_code == 404:
            return True
        if response.status_code != 400:
            return False
        body = await _read_limited(response, _ERROR_BODY_LIMIT)
        return body is not None and b"session" in body.lower()

    async def _read_answer(self, response: httpx.Response, related: Any) -> None:
        status = response.status_code
        if self._session_id is None and SESSION_HEADER in response.headers:
            self._session_id = response.headers[SESSION_HEADER]
        if status == 202:
            return
        if status >= 400:
            raise _http_failure(self.name, response)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "text/event-stream":
            async for event in sse_events(response.aiter_bytes(), self.max_message_bytes):
                if isinstance(event, OversizedEvent):
                    await self._oversized(related, event.size)
                elif event.event == "message":
                    await self._frame(event.data, related)
            return
        body = await _read_limited(response, self.max_message_bytes)
        if body is None:
            await self._oversized(related, self.max_message_bytes + 1)
        elif body.strip():
            await self._frame(body, related)

    async def _frame(self, frame: bytes, related: Any) -> None:
        initialize = self._initialize
        if initialize is not None and related == initialize["id"]:
            self._protocol_version = _negotiated_version(frame) or self._protocol_version
        await self._inbox.frame(frame, related)

    async def _oversized(self, related: Any, size: int) -> None:
        log.warning(
            "%s: dropped a %d-byte message over the %d-byte limit",
            self.name,
            size,
            self.max_message_bytes,
        )
        if related is not None:
            error = oversized_reply(self.name, self.max_message_bytes, size)
            await self._inbox.fail(related, error)

    async def _renew(self, expired: str) -> None:
        """Initialize a new session (once, however many requests found the old one gone)."""
        async with self._renew_lock:
            if self._session_id != expired:
                return  # another request already renewed it
            if self._initialize is None:
                raise UpstreamConnectionLost("forgot the gateway's session")
            log.info("%s: the remote forgot the gateway's session; initializing again", self.name)
            # Requests sent meanwhile keep the old session (and wait here when it fails);
            # the new one is used only once it is initialized.
            self._renewals += 1
            message = {**self._initialize, "id": f"archon-renew-{self._renewals}"}
            async with self._post(json.dumps(message).encode(), session=None) as response:
                if response.status_code >= 400:
                    failure = _http_failure(self.name, response)
                    raise UpstreamConnectionLost(f"refused a new session ({failure})")
                renewed = response.headers.get(SESSION_HEADER)
                # Its reply only confirms the session; the connection already knows the server.
                await self._skip_reply(response)
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            async with self._post(json.dumps(initialized).encode(), session=renewed) as response:
                if response.status_code >= 400:
                    raise UpstreamConnectionLost(
                        f"refused a new session (HTTP {response.status_code})"
                    )
            self._session_id = renewed

    async def _skip_reply(self, response: httpx.Response) -> None:
        kind = response.headers.get("content-type", "")
        if "text/event-stream" not in kind:
            await _read_limited(response, self.max_message_bytes)
            return
        async for event in sse_events(response.aiter_bytes(), self.max_message_bytes):
            if isinstance(event, OversizedEvent) or event.event == "message":
                return  # the reply to initialize is the one message on this stream

    # -- the server's own stream, and the end ---------------------------------------------

    async def _listen(self) -> None:
        """The GET stream, on which a server sends notifications (list_changed) and
        requests of its own; reopened with backoff, given up on 405 (not offered)."""
        delay = 1.0
        while True:
            heard = False
            headers = {"accept": "text/event-stream"}
            if self._session_id is not None:
                headers[SESSION_HEADER] = self._session_id
            if self._protocol_version is not None:
                headers[VERSION_HEADER] = self._protocol_version
            with suppress(httpx.HTTPError):
                async with self._client.stream(
                    "GET", self.url, headers=headers, timeout=_TIMEOUT
                ) as response:
                    if response.status_code == 405:
                        return
                    if response.status_code == 200:
                        async for event in sse_events(
                            response.aiter_bytes(), self.max_message_bytes
                        ):
                            if not isinstance(event, OversizedEvent) and event.event == "message":
                                heard = True
                                await self._inbox.frame(event.data, None)
            delay = 1.0 if heard else min(delay * 2, _LISTEN_BACKOFF_MAX)
            await anyio.sleep(delay)

    async def _end_session(self) -> None:
        if self._session_id is None or self._inbox.lost is not None:
            return
        headers = {SESSION_HEADER: self._session_id}
        with anyio.move_on_after(_CLOSE_LIMIT), suppress(httpx.HTTPError):
            await self._client.delete(self.url, headers=headers)


async def _read_limited(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes (read no further)."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _http_failure(name: str, response: httpx.Response) -> GatewayError:
    """Refused credentials concern the whole upstream; any other failure just this call."""
    status = f"HTTP {response.status_code} {response.reason_phrase}"
    if response.status_code in (401, 403):
        return UpstreamUnavailable(
            f"upstream '{name}' rejected the gateway's credentials ({status}); "
            "check the headers in its manifest"
        )
    return UpstreamCallFailed(f"upstream '{name}' failed the request ({status})")


def _negotiated_version(frame: bytes) -> str | None:
    with suppress(ValueError):
        reply = json.loads(frame)
        version = reply.get("result", {}).get("protocolVersion")
        return version if isinstance(version, str) else None
    return None
