#!/usr/bin/env python
"""Cold start: time from spawning the gateway to its answer to the first `initialize`,
and time from SIGTERM to exit, against a bare FastMCP server started the same way.

Both servers are launched as `python -c <import + run>` so the comparison is the server,
not the launcher. Runs alternate between the two to spread machine noise evenly.

    python scripts/bench/cold_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

GATEWAY = "from gateway.cli import main; import sys; sys.argv = ['archon-gateway', 'serve']; main()"
BARE = """
from fastmcp import FastMCP
server = FastMCP("bare")

@server.tool
def hello() -> str:
    return "hi"

server.run(show_banner=False)
"""
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}


def one_run(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds to the initialize reply, and seconds from SIGTERM to exit."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    process.stdin.flush()
    reply = json.loads(process.stdout.readline())
    answered = time.perf_counter() - started
    assert "result" in reply, reply
    stop_sent = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return answered, float("inf")
    return answered, time.perf_counter() - stop_sent


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="archon-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["ARCHON_DATA_DIR"] = data_dir
    one_run(BARE, env)  # warm the OS file cache for both, not measured
    one_run(GATEWAY, env)

    results: dict[str, tuple[list[float], list[float]]] = {"gateway": ([], []), "bare": ([], [])}
    for _ in range(args.runs):
        for name, code in (("gateway", GATEWAY), ("bare", BARE)):
            start, stop = one_run(code, env)
            results[name][0].append(start)
            results[name][1].append(stop)

    print(
        f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}  runs={args.runs}"
    )
    for name, (starts, stops) in results.items():
        print(f"{name:8s} spawn -> initialize answered: {summary(starts)}")
        print(f"{name:8s} SIGTERM -> exited:             {summary(stops)}")
    gateway_start = statistics.median(results["gateway"][0])
    bare_start = statistics.median(results["bare"][0])
    gateway_stop = statistics.median(results["gateway"][1])
    bare_stop = statistics.median(results["bare"][1])
    print(
        f"ratio gateway/bare, cold start (median): {gateway_start / bare_start:.2f}x "
        f"(goal: gateway < 1000 ms; measured {gateway_start * 1000:.0f} ms)"
    )
    print(
        f"ratio gateway/bare, shutdown (median):   {gateway_stop / bare_stop:.2f}x "
        f"(goal: gateway < 2000 ms; measured {gateway_stop * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
