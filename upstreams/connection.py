"""JSON-RPC with one upstream: requests, replies, progress and cancellation, over any
transport (`transport.py`: stdio pipes, or HTTP in `remote/`).

Why not the MCP SDK's client session: the gateway needs exact control over the things that
wedge proxies. A request whose caller is cancelled (timeout or client cancel) sends
`notifications/cancelled` upstream and frees its slot, so the next call works; a line over
the size bound fails only its own request; garbage on stdout is logged and skipped; and
when the process dies every waiting call fails at once instead of hanging.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from archon_gateway.core.background import running_beside
from archon_gateway.core.bounded_json import JsonRejected, dump_json, parse_json
from archon_gateway.core.errors import (
    GatewayError,
    PeerRequestRefused,
    UpstreamCallFailed,
    UpstreamConnectionLost,
    UpstreamRequestFailed,
    UpstreamUnavailable,
)
from archon_gateway.core.line_framing import OversizedLine
from archon_gateway.upstreams.transport import MessageTransport

log = logging.getLogger(__name__)

METHOD_NOT_FOUND = -32601
# Progress updates a slow caller may fall behind by before older ones are dropped.
_PROGRESS_BACKLOG = 64
# Requests from the upstream (ping, roots/list) being answered at once, at most.
_MAX_ANSWERING = 16
# How long a cancellation notice may take to write before we give up on it.
_CANCEL_SEND_LIMIT = 1.0

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
# (method, params, related request id): the id of OUR request the message belongs to, when
# the transport carries that relation (stdio does not: always None there).
NotificationHandler = Callable[[str, dict[str, Any], "int | None"], None]
# Answers a request from the upstream (same arguments) with its result object, or raises
# PeerRequestRefused for a JSON-RPC error reply.
RequestHandler = Callable[[str, dict[str, Any], "int | None"], Awaitable[dict[str, Any]]]


async def answer_locally(
    method: str, params: dict[str, Any], related: int | None
) -> dict[str, Any]:
    """What a connection answers without a request handler: ping, and no roots."""
    if method == "ping":
        return {}
    if method == "roots/list":
        return {"roots": []}
    raise PeerRequestRefused(METHOD_NOT_FOUND, f"the gateway does not forward {method} requests")


@dataclass
class _Progress:
    progress: float
    total: float | None
    message: str | None


@dataclass
class _Pending:
    """One request waiting for its reply; progress and the reply arrive on one stream."""

    send: MemoryObjectSendStream[_Progress]
    origin: object = None  # who asked (the caller's tag): requests back are routed to it
    reply: dict[str, Any] | None = None
    failure: GatewayError | None = None

    def finish(self, reply: dict[str, Any] | None, failure: GatewayError | None = None) -> None:
        self.reply, self.failure = reply, failure
        self.send.close()


@dataclass
class RpcConnection:
    """JSON-RPC over one upstream's transport. Run `serve()` in a task group; `request()`
    and `notify()` may be called from many tasks at once."""

    name: str
    transport: MessageTransport
    max_message_bytes: int
    on_notification: NotificationHandler = lambda method, params, related: None
    on_request: RequestHandler = answer_locally
    reason_at_eof: Callable[[], Awaitable[str]] | None = None
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _next_id: int = 0
    _write_lock: anyio.Lock = field(default_factory=anyio.Lock)
    _closed: str | None = None
    _garbage_lines: int = 0
    _ended: anyio.Event = field(default_factory=anyio.Event)
    _replies: TaskGroup | None = None
    _answering: int = 0

    async def serve(self) -> None:
        """Read until the upstream closes its stdout, then fail everything still waiting
        (with the reason `reason_at_eof` gives, when set: usually how the process ended)."""
        reason = "was stopped by the gateway"
        try:
            # Answers to the upstream's own requests are written from their own tasks: the
            # reader must never wait on the upstream's stdin, or an upstream that is busy
            # writing to us and not reading could deadlock both sides.
            async with anyio.create_task_group() as replies:
                self._replies = replies
                await self.transport.receive(self)
                replies.cancel_scope.cancel()
            reason = self._closed or "closed its output"
            if self.reason_at_eof is not None and self._closed is None:
                reason = await self.reason_at_eof()
        finally:
            self.close(reason)

    # -- what the transport hands us (transport.FrameSink) ---------------------------------

    def deliver(self, frame: bytes, related: int | None = None) -> None:
        self._dispatch(frame, related)

    def fail_request(self, request_id: int, error: GatewayError) -> None:
        pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending.finish(None, error)

    def lose(self, reason: str) -> None:
        self.close(reason)

    @property
    def closed(self) -> bool:
        """Whether it has ended (its supervisor may not have caught up yet)."""
        return self._ended.is_set()

    async def wait_closed(self) -> str:
        await self._ended.wait()
        assert self._closed is not None
        return self._closed

    def close(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        self._ended.set()
        for pending in list(self._pending.values()):
            pending.finish(None, UpstreamUnavailable(f"upstream '{self.name}' {self._closed}"))
        self._pending.clear()

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        *,
        origin: object = None,
    ) -> dict[str, Any]:
        """Send a request and wait for its result. Cancelling the caller tells the upstream
        (`notifications/cancelled`) and frees the request; a JSON-RPC error raises
        UpstreamRequestFailed; a dead upstream raises UpstreamUnavailable. `origin` tags
        the request (see `origin_of`)."""
        if self._closed is not None:
            raise UpstreamUnavailable(f"upstream '{self.name}' {self._closed}")
        self._next_id += 1
        request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if progress is not None:
            params = {**(params or {}), "_meta": {"progressToken": request_id}}
        if params is not None:
            message["params"] = params
        send, receive = anyio.create_memory_object_stream[_Progress](_PROGRESS_BACKLOG)
        pending = _Pending(send, origin)
        self._pending[request_id] = pending
        try:
            await self._write(message)
            async with receive:
                async for update in receive:
                    if progress is not None:
                        await progress(update.progress, update.total, update.message)
        except BaseException:
            if self._pending.pop(request_id, None) is not None:
                await self._cancel_upstream(request_id)
            raise
        finally:
            self._pending.pop(request_id, None)
            send.close()
        if pending.failure is not None:
            raise pending.failure
        assert pending.reply is not None
        return self._result_of(pending.reply)

    def origin_of(self, request_id: int | None) -> object:
        """The `origin` of a request still waiting for its reply (None if unknown)."""
        pending = self._pending.get(request_id) if request_id is not None else None
        return pending.origin if pending is not None else None

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._write(message)

    def _result_of(self, reply: dict[str, Any]) -> dict[str, Any]:
        error = reply.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise UpstreamRequestFailed(self.name, -32603, f"malformed error {error!r}")
            raise UpstreamRequestFailed(
                self.name,
                int(error.get("code", -32603)),
                str(error.get("message", "")),
                error.get("data"),
            )
        result = reply.get("result")
        if not isinstance(result, dict):
            raise UpstreamRequestFailed(self.name, -32603, f"result is not an object: {result!r}")
        return result

    async def _cancel_upstream(self, request_id: int) -> None:
        if self._closed is not None:
            return
        notice = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id, "reason": "cancelled by the gateway"},
        }
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_CANCEL_SEND_LIMIT),
            suppress(GatewayError),
        ):
            await self._write(notice)

    async def _write(self, message: dict[str, Any]) -> None:
        data = dump_json(message)
        async with self._write_lock:
            try:
                await self.transport.send(message, data)
            except UpstreamConnectionLost as exc:
                self.close(exc.reason)
                raise UpstreamUnavailable(f"upstream '{self.name}' {self._closed}") from exc

    def _dispatch(self, line: bytes, related: int | None = None) -> None:
        if not line.strip():
            return
        try:
            message = parse_json(line, max_bytes=self.max_message_bytes, what="reply")
        except JsonRejected as exc:
            if exc.limit is not None:
                self._fail_unparsable(line, exc)
                return
            message = None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self._log_garbage(line)
            return
        method = message.get("method")
        if isinstance(method, str):
            params = message.get("params")
            params = params if isinstance(params, dict) else {}
            if "id" in message:
                self._start_answer(message["id"], method, params, related)
            elif method == "notifications/progress":
                self._route_progress(params)
            else:
                self.on_notification(method, params, related)
            return
        request_id = message.get("id")
        pending = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            # A reply to a request we cancelled or timed out: expected, harmless.
            log.debug("%s: dropping a reply for id %r nobody waits for", self.name, request_id)
            return
        pending.finish(message)

    def _start_answer(
        self, request_id: Any, method: str, params: dict[str, Any], related: int | None
    ) -> None:
        if self._replies is None or self._answering >= _MAX_ANSWERING:
            log.warning("%s: too many requests from the upstream; ignoring %s", self.name, method)
            return
        self._answering += 1
        self._replies.start_soon(self._answer_request, request_id, method, params, related)

    async def _answer_request(
        self, request_id: Any, method: str, params: dict[str, Any], related: int | None
    ) -> None:
        """The upstream asked us something: `on_request` answers (or refuses) it. `related`
        is our request whose response stream carried it (HTTP), else None."""
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        try:
            reply["result"] = await self.on_request(method, params, related)
        except PeerRequestRefused as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        except Exception as exc:  # a bug answering must not kill the reader
            log.exception("%s: failed to answer %s", self.name, method)
            reply["error"] = {"code": -32603, "message": f"the gateway failed: {exc!r}"}
        try:
            with suppress(GatewayError):
                await self._write(reply)
        finally:
            self._answering -= 1

    def _route_progress(self, params: dict[str, Any]) -> None:
        token = params.get("progressToken")
        pending = self._pending.get(token) if isinstance(token, int) else None
        progress = params.get("progress")
        if pending is None or not isinstance(progress, int | float):
            return
        total = params.get("total")
        message = params.get("message")
        update = _Progress(
            float(progress),
            float(total) if isinstance(total, int | float) else None,
            message if isinstance(message, str) else None,
        )
        try:
            pending.send.send_nowait(update)
        except anyio.WouldBlock:
            pass  # the caller is behind; a later update supersedes this one
        except anyio.ClosedResourceError:
            pass

    def _fail_unparsable(self, line: bytes, exc: JsonRejected) -> None:
        """A message over a parser limit fails just its own request (when its id shows)."""
        request_id = OversizedLine(line).request_id()
        log.warning("%s: dropped a message: %s (request id %r)", self.name, exc, request_id)
        if isinstance(request_id, int):
            self.fail_request(
                request_id,
                UpstreamCallFailed(
                    f"upstream '{self.name}' sent a reply the gateway cannot read: {exc}"
                ),
            )

    def _log_garbage(self, line: bytes) -> None:
        self._garbage_lines += 1
        count = self._garbage_lines
        # Rate-limited: the first few, then every power of ten.
        if count <= 3 or math.log10(count).is_integer():
            log.warning(
                "%s: skipped a non-JSON-RPC line on stdout (%d so far): %r",
                self.name,
                count,
                line[:120],
            )


@asynccontextmanager
async def serving(
    connection: RpcConnection, *beside: Callable[[], Coroutine[Any, Any, object]]
) -> AsyncIterator[RpcConnection]:
    """Run the connection's reader (and `beside` tasks) for the duration of the block. An
    error raised in the block comes out as itself, not wrapped in an exception group."""
    async with running_beside(connection.serve, *beside):
        yield connection
