"""A cap on MCP requests in flight over HTTP that never counts the plain routes.

uvicorn's own `limit_concurrency` counted open connections and every request together, so
idle sockets made `/health` answer 503. Here only POST and DELETE requests to the MCP
endpoint count: `/health`, `/metrics` and the rest are never refused, and a session's GET
stream is bounded by the session cap instead (one per session)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from archon_gateway.gateway.asgi_replies import send_jsonrpc_error, under

SERVER_BUSY = -32000  # JSON-RPC implementation-defined server error


class McpRequestCap:
    def __init__(self, app: ASGIApp, *, max_requests: int, paths: tuple[str, ...]) -> None:
        self.app = app
        self.max_requests = max_requests
        self.paths = paths
        self.in_flight = 0

    def _counts(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("POST", "DELETE"):
            return False
        return under(scope["path"], self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._counts(scope):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_requests:
            text = (
                f"too many MCP requests in flight: {self.max_requests} (http_max_requests); "
                "retry shortly"
            )
            await answer_busy(send, None, text)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def answer_busy(send: Send, request_id: object, text: str) -> None:
    """503 with a JSON-RPC error saying `text` (one line naming the limit)."""
    await send_jsonrpc_error(send, 503, SERVER_BUSY, text, request_id, [(b"retry-after", b"1")])
