"""Shared by the benchmarks: a raw newline-JSON-RPC stdio peer and percentile helpers.

A synchronous peer keeps the client's own cost out of the measurement as far as possible.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from typing import Any

INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "archon-bench", "version": "0"},
}


class StdioPeer:
    """An MCP server process (`argv`), initialized, spoken to one JSON line at a time."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, quiet: bool = True) -> None:
        self.process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
            env=env,
        )
        self.next_id = 0
        self.call("initialize", INITIALIZE)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        """Send without waiting; returns the request id."""
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def receive(self) -> dict[str, Any]:
        """The next reply; notifications (list_changed, progress) are skipped."""
        assert self.process.stdout is not None
        while True:
            reply: dict[str, Any] = json.loads(self.process.stdout.readline())
            if "id" in reply:
                return reply

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = self.request(method, params)
        reply = self.receive()
        assert reply.get("id") == request_id, reply
        assert "error" not in reply, reply
        return reply

    def tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = self.call("tools/call", {"name": name, "arguments": arguments})
        assert not reply["result"].get("isError"), reply
        return reply

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=20)


def pct(values: list[float], q: float) -> float:
    """The q-quantile of durations in seconds, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def machine() -> str:
    return (
        f"nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}"
    )
