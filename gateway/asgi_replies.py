"""What the pure ASGI layers of the HTTP door share: whether a path is under an endpoint,
and the one-shot JSON answers they send when they refuse a request themselves."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Header = tuple[bytes, bytes]


def under(path: str, paths: Sequence[str]) -> bool:
    """`path` is one of `paths` or below one (`/mcp` covers `/mcp/profile`)."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)


async def send_json(send: Send, status: int, payload: Any, headers: Sequence[Header] = ()) -> None:
    """A complete JSON response: `payload` with `status` and any extra `headers`."""
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_jsonrpc_error(
    send: Send,
    status: int,
    code: int,
    text: str,
    request_id: object = None,
    headers: Sequence[Header] = (),
) -> None:
    """A JSON-RPC error answer (`code`, one line of `text`) for `request_id`."""
    payload = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": text}}
    await send_json(send, status, payload, headers)
