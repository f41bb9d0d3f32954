"""A stdio MCP server written by hand (no SDK) that prints junk on its protocol stream:
before every tool result it writes a line that is not JSON and one that is JSON but not
JSON-RPC. A robust client skips both and still gets the result. `echo` with text "reject"
is answered with a JSON-RPC error instead (the upstream is alive, the request was bad).
With env GARBAGE_PING=ignore it never answers a ping (alive, but wedged)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

TOOL = {
    "name": "echo",
    "description": "Return the text unchanged (after some junk on stdout).",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    method = request.get("method")
    if method == "initialize":
        return {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "garbage", "version": "0"},
        }
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        sys.stdout.write("Loading model weights... done\n")
        sys.stdout.write('{"progress": "50%"}\n')
        text = request["params"]["arguments"].get("text", "")
        if text == "reject":
            return None
        return {"content": [{"type": "text", "text": text}], "isError": False}
    if method == "ping":
        return {}
    return None


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        if "id" not in request:
            continue  # a notification
        if request.get("method") == "ping" and os.environ.get("GARBAGE_PING") == "ignore":
            continue
        result = answer(request)
        if result is None:
            error = {"code": -32602, "message": f"cannot do {request.get('method')} with that"}
            send({"jsonrpc": "2.0", "id": request["id"], "error": error})
        else:
            send({"jsonrpc": "2.0", "id": request["id"], "result": result})


if __name__ == "__main__":
    main()
