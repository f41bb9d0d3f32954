"""Bounds every JSON-RPC body POSTed to the MCP endpoint before the SDK reads it.

The SDK parses a body of any size and reads a request whose `id` is an object, a float, a
bool or null as a notification (answering 202 and nothing else). Here the body is read up
to `max_bytes` (413 past it), parsed with the kernel's bounded parser (depth and size), and
a message with an unusable id is answered -32600; what passes is replayed to the app
unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archon_gateway.core.bounded_json import JsonRejected, parse_json

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
        path: str = scope["path"]
        return not self.paths or any(
            path == p or path.startswith(p.rstrip("/") + "/") for p in self.paths
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._guards(scope):
            await self.app(scope, receive, send)
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
                text = f"Invalid Request: body is over the {self.max_bytes}-byte limit"
                await _answer(send, 413, INVALID_REQUEST, text)
                return
        try:
            document = parse_json(bytes(body), max_bytes=self.max_bytes, what="body")
        except JsonRejected as exc:
            await _answer(send, 400, PARSE_ERROR, f"Parse error: {exc}")
            return
        if not _usable_ids(document):
            text = "Invalid Request: id must be a string or an integer"
            await _answer(send, 400, INVALID_REQUEST, text)
            return
        # Layers inside (the lane) read the parsed document instead of parsing it again.
        scope = {**scope, PARSED_BODY: document}
        await self.app(scope, _replay(bytes(body), receive), send)


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


async def _answer(send: Send, status: int, code: int, text: str) -> None:
    payload = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": text}}
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
