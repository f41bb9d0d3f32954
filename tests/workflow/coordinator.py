"""A small workflow coordinator for tests: a raw ASGI app speaking the REST mapping the
client uses, served by uvicorn on 127.0.0.1, that misbehaves on request.

Workflows (by name): `echo` runs `steps` steps of `step_seconds` each and returns its
inputs; `hang` never finishes; `fail` fails after its first step. Faults: `fail_polls`
answers that many status polls with HTTP 500, `drop_polls` cuts that many status responses
off mid-body (the connection drops), `always_500` answers everything with HTTP 500.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn

from tests.support import wait_until

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Run:
    id: str
    workflow: str
    inputs: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def state(self) -> dict[str, Any]:
        steps = int(self.inputs.get("steps", 3))
        step_seconds = float(self.inputs.get("step_seconds", 0.05))
        done = min(steps, int((time.monotonic() - self.started) / step_seconds))
        if self.cancelled:
            return {"status": "cancelled", "progress": done, "total": steps}
        if self.workflow == "hang":
            return {"status": "running", "progress": None, "total": None, "message": "waiting"}
        if self.workflow == "fail" and done >= 1:
            return {"status": "failed", "progress": 1, "total": steps, "error": "step 2: boom"}
        if done >= steps:
            return {"status": "succeeded", "progress": steps, "total": steps,
                    "result": {"echo": self.inputs}}  # fmt: skip
        status = "queued" if done == 0 else "running"
        message = f"step {done} of {steps}"
        return {"status": status, "progress": done, "total": steps, "message": message}


class Coordinator:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.requests: list[str] = []
        self.cancels: list[str] = []
        self.cancelled = anyio.Event()
        self.polled = anyio.Event()
        self.fail_polls = 0
        self.drop_polls = 0
        self.always_500 = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        method, path = scope["method"], scope["path"]
        self.requests.append(f"{method} {path}")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.always_500:
            return await _reply(send, 500, {"detail": "internal error"})

        if method == "POST" and (match := re.fullmatch(r"/workflows/([^/]+)/runs", path)):
            workflow = match.group(1)
            if workflow not in ("echo", "hang", "fail"):
                return await _reply(send, 404, {"detail": f"no workflow {workflow}"})
            run = Run(f"run-{len(self.runs) + 1}", workflow, json.loads(body)["inputs"])
            self.runs[run.id] = run
            return await _reply(send, 202, {"run_id": run.id})
        if method == "GET" and (match := re.fullmatch(r"/runs/([^/]+)", path)):
            self.polled.set()
            run = self.runs.get(match.group(1))
            if run is None:
                return await _reply(send, 404, {"detail": "no such run"})
            if self.fail_polls:
                self.fail_polls -= 1
                return await _reply(send, 500, {"detail": "database is locked"})
            if self.drop_polls:
                self.drop_polls -= 1
                await send(_start(200, 1000))
                await send(
                    {"type": "http.response.body", "body": b'{"status": "ru', "more_body": True}
                )
                raise ConnectionResetError("dropping the connection on purpose")
            return await _reply(send, 200, run.state())
        if method == "POST" and (match := re.fullmatch(r"/runs/([^/]+)/cancel", path)):
            run = self.runs.get(match.group(1))
            if run is None:
                return await _reply(send, 404, {"detail": "no such run"})
            run.cancelled = True
            self.cancels.append(run.id)
            self.cancelled.set()
            return await _reply(send, 202, {"run_id": run.id, "status": "cancelled"})
        return await _reply(send, 404, {"detail": "not found"})


def _start(status: int, length: int) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _reply(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(_start(status, len(data)))
    await send({"type": "http.response.body", "body": data})


@asynccontextmanager
async def serving(app: Coordinator) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False)
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        await wait_until(lambda: server.started, within=10)  # uvicorn offers only this flag
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()
