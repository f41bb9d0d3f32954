"""A small remote MCP server (streamable HTTP, JSON answers) that misbehaves on purpose:
`hang` accepts a tools/call and never answers. It records what it receives (notifications,
request headers, session ends) as JSON lines in REMOTE_RECORD_FILE, so tests can assert on
the server's side; its sessions live in memory, so a restart forgets them (404).

    python remote_server.py PORT   (0 picks one; "listening on PORT" goes to stderr)
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SESSIONS: set[str] = set()
TOOLS = [
    {"name": name, "description": f"{name} tool", "inputSchema": {"type": "object"}}
    for name in ("echo", "hang", "whoami")
]


def record(entry: dict[str, Any]) -> None:
    path = os.environ.get("REMOTE_RECORD_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(entry) + "\n")


def reply(request_id: Any, result: dict[str, Any], **headers: str) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result}, headers=headers)


def text(request_id: Any, value: str) -> JSONResponse:
    return reply(request_id, {"content": [{"type": "text", "text": value}]})


async def mcp(request: Request) -> Response:
    if request.method == "GET":
        return Response(status_code=405)
    session = request.headers.get("mcp-session-id")
    if request.method == "DELETE":
        SESSIONS.discard(session or "")
        record({"deleted": session})
        return Response(status_code=200)
    message = json.loads(await request.body())
    method, request_id = message.get("method"), message.get("id")
    params = message.get("params") or {}
    if method == "initialize":
        session = uuid.uuid4().hex
        SESSIONS.add(session)
        record({"initialized": session, "authorization": request.headers.get("authorization")})
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "remote-test", "version": "0"},
        }
        return reply(request_id, result, **{"mcp-session-id": session})
    if session not in SESSIONS:
        return JSONResponse({"error": "Session not found"}, status_code=404)
    if request_id is None:  # a notification
        record({"notification": method, "params": params})
        return Response(status_code=202)
    if method == "ping":
        return reply(request_id, {})
    if method == "tools/list":
        return reply(request_id, {"tools": TOOLS})
    name = params.get("name")
    if name == "hang":
        await anyio.sleep_forever()
    if name == "whoami":
        return text(request_id, request.headers.get("x-team", "?"))
    return text(request_id, str(params.get("arguments", {}).get("text", "")))


def main() -> None:
    app = Starlette(routes=[Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(128)
    print(f"listening on {listener.getsockname()[1]}", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    anyio.run(lambda: server.serve(sockets=[listener]))


if __name__ == "__main__":
    main()
