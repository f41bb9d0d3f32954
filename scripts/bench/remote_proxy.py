#!/usr/bin/env python
"""Remote upstream proxy cost: server-everything (npm, tests/upstreams/node) serving
streamable HTTP on 127.0.0.1, its `echo` tool called

- directly: a raw HTTP JSON-RPC client (httpx, one session, keep-alive), and
- through the gateway: a raw stdio JSON-RPC client to `archon-gateway serve`, whose
  manifest points at the same server (`url = ...`), and the same raw HTTP client against
  the gateway's HTTP front door,

in interleaved rounds (direct, stdio, HTTP, direct, ...), so drift hits all alike.
Goal: gateway p50 <= 1.3x direct p50.

    python scripts/bench/remote_proxy.py [--rounds 20] [--calls 50] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import INITIALIZE, StdioPeer, machine, pct

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests" / "upstreams" / "node"
EVERYTHING = NODE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist"
GATEWAY = str(Path(sys.executable).with_name("archon-gateway"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class HttpPeer:
    """A raw streamable-HTTP JSON-RPC client: one session, JSON or SSE answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(trust_env=False, timeout=30)
        self.headers = {"accept": "application/json, text/event-stream"}
        self.next_id = 0
        response = self.post({"method": "initialize", "params": INITIALIZE, "id": 0})
        if "mcp-session-id" in response.headers:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-06-18"
        self.post({"method": "notifications/initialized"})

    def post(self, message: dict[str, Any]) -> httpx.Response:
        body = json.dumps({"jsonrpc": "2.0", **message})
        return self.client.post(
            self.url, content=body, headers={**self.headers, "content-type": "application/json"}
        )

    def tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        message = {"method": "tools/call", "id": self.next_id}
        response = self.post({**message, "params": {"name": name, "arguments": arguments}})
        text = response.text
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            text = [line[5:] for line in text.splitlines() if line.startswith("data:")][-1]
        reply: dict[str, Any] = json.loads(text)
        assert reply.get("id") == self.next_id, reply
        assert "result" in reply, reply
        return reply


def timed(call: Any, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 2, 10
    if not (EVERYTHING / "index.js").exists():
        raise SystemExit(f"run `npm ci --prefix {NODE}` first")

    port = free_port()
    remote = subprocess.Popen(
        ["node", str(EVERYTHING / "index.js"), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as scratch:
        manifests = Path(scratch) / "manifests"
        manifests.mkdir()
        (manifests / "ev.toml").write_text(f'url = "http://127.0.0.1:{port}/mcp"\n')
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")},
            "ARCHON_DATA_DIR": str(Path(scratch) / "data"),
            "ARCHON_MANIFESTS_DIR": str(manifests),
            "ARCHON_LOG_LEVEL": "warning",
        }
        gateway_stderr = Path(scratch) / "gateway.stderr"
        http_gateway = subprocess.Popen(
            [GATEWAY, "serve", "--transport", "http", "--port", "0", "--log-level", "info"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=gateway_stderr.open("wb"),
        )
        try:
            wait_listening(port)
            direct = HttpPeer(f"http://127.0.0.1:{port}/mcp")
            stdio = StdioPeer([GATEWAY, "serve"], env)
            deadline = time.monotonic() + 30
            while not (found := re.search(r"at (http://\S+/mcp)", gateway_stderr.read_text())):
                if time.monotonic() > deadline:
                    raise SystemExit("the HTTP gateway did not start")
                time.sleep(0.05)
            via_http = HttpPeer(found.group(1))
            echo = {"message": "ping"}
            for _ in range(20):  # warm up all three paths (and start the lazy upstream)
                direct.tool("echo", echo)
                stdio.tool("ev_echo", echo)
                via_http.tool("ev_echo", echo)
            base: list[float] = []
            through_stdio: list[float] = []
            through_http: list[float] = []
            for _ in range(args.rounds):
                base += timed(lambda: direct.tool("echo", echo), args.calls)
                through_stdio += timed(lambda: stdio.tool("ev_echo", echo), args.calls)
                through_http += timed(lambda: via_http.tool("ev_echo", echo), args.calls)
            stdio.close()
        finally:
            http_gateway.terminate()
            http_gateway.wait(timeout=20)
            remote.terminate()
            remote.wait(timeout=20)

    print(f"remote proxy: server-everything streamable HTTP echo; {machine()}")
    print(f"{args.rounds} interleaved rounds x {args.calls} sequential calls per path")
    b50, b99 = pct(base, 0.5), pct(base, 0.99)
    print(f"{'direct (raw HTTP client)':<36} p50 {b50:7.3f} ms  p99 {b99:7.3f} ms")
    for label, times in (
        ("gateway stdio front door", through_stdio),
        ("gateway HTTP front door", through_http),
    ):
        p50, p99 = pct(times, 0.5), pct(times, 0.99)
        print(
            f"{label:<36} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  ratio p50 {p50 / b50:4.2f}x "
            f"(+{p50 - b50:.3f} ms)  p99 {p99 / b99:4.2f}x"
        )


if __name__ == "__main__":
    main()
