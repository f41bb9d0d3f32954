"""A hand-written stdio MCP server with one `echo` tool, pure stdlib and as cheap as a
Python peer gets: newline-delimited JSON-RPC, answers `initialize`, `tools/list`,
`tools/call` and `ping`, ignores notifications. The benchmarks proxy it so that the
gateway, not the upstream, is what they measure. Run: python fast_echo_server.py."""

from __future__ import annotations

import json
import sys
from typing import Any

ECHO_TOOL = {
    "name": "echo",
    "description": "Return the text unchanged.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}
SERVER_INFO = {"name": "fast-echo", "version": "1"}
SUPPORTED = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")


def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The result for `method`, or raises KeyError for a method this server lacks."""
    if method == "tools/call":
        if params.get("name") != "echo":
            return {"content": [{"type": "text", "text": "unknown tool"}], "isError": True}
        text = str((params.get("arguments") or {}).get("text", ""))
        return {"content": [{"type": "text", "text": text}], "isError": False}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [ECHO_TOOL]}
    if method == "initialize":
        asked = params.get("protocolVersion")
        return {
            "protocolVersion": asked if asked in SUPPORTED else SUPPORTED[0],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
        }
    raise KeyError(method)


def reply_to(message: dict[str, Any]) -> dict[str, Any] | None:
    if "id" not in message or "method" not in message:
        return None  # a notification, or a reply to a request this server never sends
    try:
        result = answer(message["method"], message.get("params") or {})
    except KeyError:
        error = {"code": -32601, "message": f"method not found: {message['method']}"}
        return {"jsonrpc": "2.0", "id": message["id"], "error": error}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        reply = reply_to(message) if isinstance(message, dict) else None
        if reply is not None:
            out.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
            out.flush()


if __name__ == "__main__":
    main()
