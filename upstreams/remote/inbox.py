"""What HTTP tasks received, queued in order for the connection's reader (`receive`)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import anyio

from archon_gateway.core.errors import GatewayError
from archon_gateway.upstreams.transport import FrameSink

# ("frame", bytes, related id) | ("fail", request id, error)
_Item = tuple[str, Any, Any]
_BACKLOG = 256


class Inbox:
    def __init__(self) -> None:
        self.lost: str | None = None
        self._in, self._out = anyio.create_memory_object_stream[_Item](_BACKLOG)

    async def frame(self, frame: bytes, related: Any) -> None:
        await self._put(("frame", frame, related if isinstance(related, int) else None))

    async def fail(self, request_id: Any, error: GatewayError) -> None:
        if isinstance(request_id, int):
            await self._put(("fail", request_id, error))

    def lose(self, reason: str) -> None:
        """The connection is gone: the reader passes on what is queued, then fails
        everything still waiting and returns."""
        if self.lost is None:
            self.lost = reason
            self._in.close()

    async def _put(self, item: _Item) -> None:
        if self.lost is None:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await self._in.send(item)

    async def receive(self, sink: FrameSink) -> None:
        async for kind, first, second in self._out:
            if kind == "frame":
                sink.deliver(first, second)
            else:
                sink.fail_request(first, second)
        sink.lose(self.lost or "closed its stream")
