"""A cap on MCP requests in flight over HTTP that never counts the plain routes.

uvicorn's own `limit_concurrency` counted open connections and every request together, so
idle sockets made `/health` answer 503. Here only POST and DELETE requests to the MCP
endpoint count: `/health`, `/metrics` and the rest are never refused, and a session's GET
stream is bounded by the session cap instead (one per session)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

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
        path: str = scope["path"]
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.paths)

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
    payload = {"jsonrpc": "2.0", "id": request_id, "error": {"code": SERVER_BUSY, "message": text}}
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
