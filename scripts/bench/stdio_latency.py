#!/usr/bin/env python
"""Tool-call latency over stdio: the gateway's own stdio transport (gateway_info) against a
bare FastMCP server on the MCP SDK's stdio transport (a tool returning the same payload).

One client, sequential calls after a warm-up, then a burst of concurrent calls; both
servers are spawned the same way (`python -c`). Prints p50/p90/p99 and the ratios.

    python scripts/bench/stdio_latency.py [--calls 500] [--burst 200] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchlib import StdioPeer, machine, pct

GATEWAY = "from archon_gateway.gateway.cli import main; main(['serve', '--log-level', 'warning'])"
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


TOOL_CALL = {"name": "gateway_info", "arguments": {}}


def sequential(peer: StdioPeer, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        peer.tool(**TOOL_CALL)
        times.append(time.perf_counter() - started)
    return times


def burst(peer: StdioPeer, size: int) -> float:
    started = time.perf_counter()
    ids = {peer.request("tools/call", TOOL_CALL) for _ in range(size)}
    while ids:
        ids.discard(peer.receive()["id"])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.burst = 100, 50
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["ARCHON_DATA_DIR"] = tempfile.mkdtemp(prefix="archon-bench-")

    results: dict[str, tuple[list[float], float]] = {}
    for name, code in (("gateway", GATEWAY), ("bare", BARE)):
        peer = StdioPeer([sys.executable, "-c", code], env)
        sequential(peer, 50)  # warm-up
        times = sequential(peer, args.calls)
        results[name] = (times, burst(peer, args.burst))
        peer.close()

    print(f"machine: {machine()}  calls={args.calls} burst={args.burst}")
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
