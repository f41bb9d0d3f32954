#!/usr/bin/env python
"""Tool-call latency over stdio: the gateway's own stdio transport (gateway_info) against a
bare FastMCP server on the MCP SDK's stdio transport (a tool returning the same payload).

One client, sequential calls after a warm-up, then a burst of concurrent calls; both
servers are spawned the same way (`python -c`). Prints p50/p90/p99 and the ratios.

    python scripts/bench/stdio_latency.py [--calls 500] [--burst 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

GATEWAY = "import sys; from gateway.cli import main; main(['serve', '--log-level', 'warning'])"
# Same shape of answer as gateway_info, so the difference is the server path, not the payload.
BARE = """
from fastmcp import FastMCP
server = FastMCP("bare")

@server.tool(name="gateway_info")
def gateway_info() -> dict:
    return {"name": "bare", "version": "0", "transports": ["stdio"], "uptime_s": 0.0,
            "status": "ok", "components": {"native_tools": {"status": "ok", "detail": ""}},
            "counts": {"tools": 1, "tool_calls": {"ok": 1}, "sessions": {"stdio": 1}}}

server.run(show_banner=False)
"""


class Peer:
    def __init__(self, code: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.next_id = 0
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b"}}
        self.call("initialize", init)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        return reply

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = self.request(method, params)
        reply = self.receive()
        assert reply.get("id") == request_id, reply
        return reply

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


TOOL_CALL = {"name": "gateway_info", "arguments": {}}


def sequential(peer: Peer, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        reply = peer.call("tools/call", TOOL_CALL)
        times.append(time.perf_counter() - started)
        assert not reply["result"].get("isError"), reply
    return times


def burst(peer: Peer, size: int) -> float:
    started = time.perf_counter()
    ids = {peer.request("tools/call", TOOL_CALL) for _ in range(size)}
    while ids:
        ids.discard(peer.receive()["id"])
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["ARCHON_DATA_DIR"] = tempfile.mkdtemp(prefix="archon-bench-")

    results: dict[str, tuple[list[float], float]] = {}
    for name, code in (("gateway", GATEWAY), ("bare", BARE)):
        peer = Peer(code, env)
        sequential(peer, 50)  # warm-up
        times = sequential(peer, args.calls)
        results[name] = (times, burst(peer, args.burst))
        peer.close()

    print(
        f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}  calls={args.calls} burst={args.burst}"
    )
    for name, (times, burst_s) in results.items():
        print(
            f"{name:8s} sequential: p50 {pct(times, 0.5):6.2f} ms  p90 {pct(times, 0.9):6.2f} ms"
            f"  p99 {pct(times, 0.99):6.2f} ms   burst of {args.burst}: {burst_s * 1000:7.1f} ms"
        )
    gateway, bare = results["gateway"], results["bare"]
    print(
        f"ratio gateway/bare: p50 {statistics.median(gateway[0]) / statistics.median(bare[0]):.2f}x"
        f"  burst {gateway[1] / bare[1]:.2f}x"
    )


if __name__ == "__main__":
    main()
