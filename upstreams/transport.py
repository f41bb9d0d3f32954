"""The seam under `RpcConnection`: how JSON-RPC messages reach an upstream and come back.

A transport moves whole messages; the connection does everything JSON-RPC (ids, replies,
progress, cancellation, failing waiters). Two kinds exist: newline-delimited JSON over a
process's pipes (`StdioTransport`, here) and HTTP (`upstreams/remote/`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream

from archon_gateway.core.errors import (
    GatewayError,
    UpstreamCallFailed,
    UpstreamConnectionLost,
)
from archon_gateway.core.line_framing import READ_SIZE, BoundedLines, OversizedLine

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """What a transport hands incoming messages to (the connection)."""

    def deliver(self, frame: bytes, related: int | None = None) -> None:
        """One JSON-RPC message as received; `related` is the id of our request whose
        response stream carried it (HTTP), if any."""

    def fail_request(self, request_id: int, error: GatewayError) -> None:
        """Our request `request_id` can get no reply (too large, refused by the server)."""

    def lose(self, reason: str) -> None:
        """The connection is gone ("upstream 'x' <reason>"); fail everything waiting."""


class MessageTransport(Protocol):
    async def receive(self, sink: FrameSink) -> None:
        """Hand every incoming message to `sink` until the upstream's stream ends."""

    async def send(self, message: dict[str, Any], data: bytes) -> None:
        """Send one message (`data` is its JSON); raise UpstreamConnectionLost when it cannot."""


class StdioTransport:
    """Newline-delimited JSON-RPC over a process's stdin/stdout, lines bounded by
    `max_message_bytes` (an oversized line fails only its own request)."""

    def __init__(
        self, name: str, stdin: ByteSendStream, stdout: ByteReceiveStream, max_message_bytes: int
    ) -> None:
        self.name = name
        self.stdin = stdin
        self.stdout = stdout
        self.max_message_bytes = max_message_bytes

    async def receive(self, sink: FrameSink) -> None:
        lines = BoundedLines(self.max_message_bytes)
        while True:
            try:
                chunk = await self.stdout.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            for line in lines.feed(chunk):
                if isinstance(line, OversizedLine):
                    self._fail_oversized(sink, line)
                else:
                    sink.deliver(line)
            growing = lines.oversized
            if growing is not None and not growing.answered:
                # Fail its request now, not after the rest of it (maybe never) arrives.
                self._fail_request_oversized(sink, growing, growing.leading_id())

    async def send(self, message: dict[str, Any], data: bytes) -> None:
        try:
            await self.stdin.send(data + b"\n")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise UpstreamConnectionLost("stopped reading its input") from exc

    def _fail_oversized(self, sink: FrameSink, line: OversizedLine) -> None:
        request_id = line.request_id()
        log.warning(
            "%s: dropped a %d-byte message over the %d-byte limit (request id %r)",
            self.name,
            line.size,
            self.max_message_bytes,
            request_id,
        )
        if not line.answered:
            self._fail_request_oversized(sink, line, request_id)

    def _fail_request_oversized(
        self, sink: FrameSink, line: OversizedLine, request_id: str | int | None
    ) -> None:
        if not isinstance(request_id, int):
            return
        line.answered = True
        sink.fail_request(request_id, oversized_reply(self.name, self.max_message_bytes, line.size))


def oversized_reply(name: str, limit: int, size: int) -> UpstreamCallFailed:
    return UpstreamCallFailed(
        f"upstream '{name}' sent a reply over the {limit}-byte message limit "
        f"({size} bytes so far); raise max_message_bytes in its manifest if this is expected"
    )
