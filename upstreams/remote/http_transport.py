"""What both HTTP transports (streamable HTTP, SSE) share: their HTTP client, inbox and
task group, entered and left in the same order."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup

from archon_gateway.core.http_client import create_http_client
from archon_gateway.upstreams.remote.inbox import Inbox
from archon_gateway.upstreams.transport import FrameSink


class HttpTransport:
    """Use as an async context manager; subclasses start their tasks in `_started` and say
    goodbye to the server in `_closing` (both optional)."""

    def __init__(
        self, name: str, url: str, headers: dict[str, str], max_message_bytes: int
    ) -> None:
        self.name = name
        self.url = url
        self.max_message_bytes = max_message_bytes
        self._client = create_http_client(headers=headers)
        self._inbox = Inbox()
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._started(self._tg)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            # The block's own error is not the task group's: it passes on as itself (the
            # tasks catch theirs), not wrapped in an exception group.
            await self._tg.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self._closing()
                await self._client.aclose()

    def _started(self, tg: TaskGroup) -> None:
        """Start the tasks that live as long as the transport."""

    async def _closing(self) -> None:
        """Tell the server we are leaving (shielded; the HTTP client is still open)."""

    async def receive(self, sink: FrameSink) -> None:
        await self._inbox.receive(sink)
