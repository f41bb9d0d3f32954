#!/usr/bin/env python
"""Cold start and shutdown of the gateway against a bare FastMCP server started the same way.

Measured for each server, alternating runs to spread machine noise evenly:
- stdio: spawn -> first `initialize` answered; SIGTERM -> process exited.
- http:  spawn -> first `initialize` answered over streamable HTTP; SIGTERM -> exited while a
         client session holds its event stream open.

Both servers are launched as `python -c <import + run>`, so the comparison is the server,
not the launcher.

With `--store`, two more gateways run in the same interleaved rounds: the same gateway with
the store off (`ARCHON_STORE_ENABLED=false`), and, with `--main-tree DIR`, the gateway of
another source tree (e.g. main before the store: `git archive main | tar -x -C DIR`, then
`DIR/scripts/link_tree`), imported from `DIR/build/typecheck` ahead of the editable install.
Ratios: store on / store off, and store on / that tree.

    python scripts/bench/cold_start.py [--runs 10] [--store [--main-tree DIR]] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

GATEWAY = "import sys; from archon_gateway.gateway.cli import main; main(['serve', *sys.argv[1:]])"
BARE = """
import sys
from fastmcp import FastMCP
server = FastMCP("bare")

@server.tool
def hello() -> str:
    return "hi"

if sys.argv[1:]:
    server.run(transport="http", host="127.0.0.1", port=int(sys.argv[-1]), show_banner=False)
else:
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


def spawn(code: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def stop(process: subprocess.Popen[bytes]) -> float:
    sent = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return float("inf")
    return time.perf_counter() - sent


def stdio_run(code: str, env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    process = spawn(code, env)
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    process.stdin.flush()
    reply = json.loads(process.stdout.readline())
    answered = time.perf_counter() - started
    assert "result" in reply, reply
    return answered, stop(process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def http_run(code: str, env: dict[str, str], gateway_args: bool) -> tuple[float, float]:
    port = free_port()
    args = ("--transport", "http", "--port", str(port)) if gateway_args else (str(port),)
    started = time.perf_counter()
    process = spawn(code, env, *args)
    url = f"http://127.0.0.1:{port}/mcp"
    with anyio.fail_after(30):
        while True:  # bounded by fail_after: wait until the port accepts
            try:
                async with httpx.AsyncClient() as probe:
                    await probe.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.TransportError:
                await anyio.sleep(0.005)
        async with (
            streamable_http_client(url, terminate_on_close=False) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            answered = time.perf_counter() - started
            await anyio.sleep(0.2)  # let the client open its GET event stream
            stopped = await anyio.to_thread.run_sync(stop, process)
    return answered, stopped


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)

    parser.add_argument("--store", action="store_true", help="also the store off (and main)")
    parser.add_argument("--main-tree", help="source tree of the gateway to compare with")
    parser.add_argument("--quick", action="store_true", help="1 run, stdio only")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    transports = ("stdio",) if args.quick else ("stdio", "http ")

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["ARCHON_DATA_DIR"] = tempfile.mkdtemp(prefix="archon-bench-")
    # name -> (code, environment, is a gateway)
    servers: dict[str, tuple[str, dict[str, str], bool]] = {
        "gateway": (GATEWAY, env, True),
        "bare": (BARE, env, False),
    }
    if args.store:
        off = env | {"ARCHON_STORE_ENABLED": "false"}
        off["ARCHON_DATA_DIR"] = tempfile.mkdtemp(prefix="archon-bench-off-")
        servers["store off"] = (GATEWAY, off, True)
        if args.main_tree:
            tree = os.path.join(os.path.abspath(args.main_tree), "build", "typecheck")
            main_env = env | {"PYTHONPATH": tree}
            main_env["ARCHON_DATA_DIR"] = tempfile.mkdtemp(prefix="archon-bench-main-")
            servers["main"] = (GATEWAY, main_env, True)
    for code, server_env, _ in servers.values():
        stdio_run(code, server_env)  # warm the OS file cache (and migrate), not measured

    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for name, (code, server_env, gateway) in servers.items():
            rows.setdefault(f"stdio {name}", []).append(stdio_run(code, server_env))
            if "http " in transports:
                http = anyio.run(http_run, code, server_env, gateway)
                rows.setdefault(f"http  {name}", []).append(http)

    print(
        f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}  runs={args.runs}"
    )
    medians: dict[str, tuple[float, float]] = {}
    for row, values in rows.items():
        starts, stops = [v[0] for v in values], [v[1] for v in values]
        medians[row] = (statistics.median(starts), statistics.median(stops))
        print(f"{row:16s} spawn -> initialize answered: {summary(starts)}")
        print(f"{row:16s} SIGTERM -> exited:             {summary(stops)}")
    for transport in transports:
        gateway, bare = medians[f"{transport} gateway"], medians[f"{transport} bare"]
        print(
            f"ratio gateway/bare {transport.strip():5s}: cold start {gateway[0] / bare[0]:.2f}x "
            f"({gateway[0] * 1000:.0f} ms, goal < 1000 ms), "
            f"shutdown {gateway[1] / bare[1]:.2f}x ({gateway[1] * 1000:.0f} ms, goal < 2000 ms)"
        )
        for other in ("store off", "main"):
            if f"{transport} {other}" not in medians:
                continue
            base = medians[f"{transport} {other}"]
            print(
                f"ratio store on/{other} {transport.strip():5s}: cold start "
                f"{gateway[0] / base[0]:.2f}x ({gateway[0] * 1000:.0f} vs "
                f"{base[0] * 1000:.0f} ms), shutdown {gateway[1] / base[1]:.2f}x "
                f"({gateway[1] * 1000:.0f} vs {base[1] * 1000:.0f} ms)"
            )


if __name__ == "__main__":
    main()
