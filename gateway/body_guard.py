"""Bounds every JSON-RPC body POSTed to the MCP endpoint before the SDK reads it.

The SDK reads a request whose `id` is an object, a float, a bool or null as a notification
(answering 202 and nothing else), forwards a NaN or 1e400 as null, and has its own body
limit answered in plain text. Here the body is read up to `max_bytes` (`max_message_bytes`,
the one limit: the SDK's is raised to it; 413 with a JSON-RPC error past it), parsed with
the kernel's bounded parser (depth, size, finite numbers: -32700 naming the field, as on
stdio), and a message with an unusable id is answered -32600; what passes is replayed to
the app unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archon_gateway.core.bounded_json import JsonRejected, parse_json
from archon_gateway.core.line_framing import OversizedLine
from archon_gateway.gateway.asgi_replies import send_jsonrpc_error, under

PARSE_ERROR = -32700
PARSED_BODY = "archon.parsed_body"  # scope key under which the parsed body travels on
INVALID_REQUEST = -32600


class JsonBodyGuard:
    def __init__(self, app: ASGIApp, *, max_bytes: int, paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    def _guards(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        return not self.paths or under(scope["path"], self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._guards(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_jsonrpc_error(
                send, 413, INVALID_REQUEST, self._too_large(f"{declared} bytes")
            )
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                # The rest is not read: its size is unknown.
                size = f"{len(body)} bytes so far" if more else f"{len(body)} bytes"
                await send_jsonrpc_error(send, 413, INVALID_REQUEST, self._too_large(size))
                return
        try:
            # "message", as on stdio: the same input gets the same error on both doors.
            document = parse_json(bytes(body), max_bytes=self.max_bytes, what="message")
        except JsonRejected as exc:
            request_id = OversizedLine(body).request_id()
            await send_jsonrpc_error(send, 400, PARSE_ERROR, f"Parse error: {exc}", request_id)
            return
        if not _usable_ids(document):
            text = "Invalid Request: id must be a string or an integer"
            await send_jsonrpc_error(send, 400, INVALID_REQUEST, text)
            return
        # Layers inside (the lane) read the parsed document instead of parsing it again.
        scope = {**scope, PARSED_BODY: document}
        await self.app(scope, _replay(bytes(body), receive), send)

    def _too_large(self, size: str) -> str:
        return (
            f"Invalid Request: the body ({size}) is over max_message_bytes, "
            f"the {self.max_bytes}-byte limit"
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 20 else None
    return None


def _usable_ids(document: Any) -> bool:
    for item in document if isinstance(document, list) else [document]:
        request = isinstance(item, dict) and "method" in item and "id" in item
        if request and not _usable_id(item["id"]):
            return False
    return True


def _usable_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
