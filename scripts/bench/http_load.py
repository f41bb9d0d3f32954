#!/usr/bin/env python
"""HTTP front door throughput and latency: calls/s, p50 and p99 at 1 and 50 keep-alive
connections, in both MCP protocol eras (2026-07-28 session-less; 2025-11-25 handshake with
Mcp-Session-Id), every reply verified. Targets, measured in the same run, rounds
interleaved (A B C D A B C D):

  bare      a bare FastMCP streamable-HTTP server, `echo` tool (the baseline)
  native    archon-gateway `serve --transport http`, native `gateway_info`
  fast      the gateway proxying tests/upstreams/fast_echo_server.py (hand-written stdio)
  fastmcp   the gateway proxying tests/upstreams/toolbox_server.py `echo` (FastMCP stdio)

plus each stdio upstream's own direct capacity (a pipelined raw stdio client, 50 calls in
flight), so the proxied figure can be set beside what the upstream can do at all.

The load generator is `wrk` with a generated Lua script when it is on PATH (Debian package
`wrk`), else several Python processes of http.client keep-alive loops (`--generator`); its
CPU use is reported beside the servers' (gateway + upstreams) CPU per call.

    python scripts/bench/http_load.py [--seconds 5] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    StdioPeer,
    bench_env,
    cpu_seconds,
    machine,
    start_bare_http,
    start_http_gateway,
    stop,
    tree_pids,
    write_manifest,
)
from loadgen import ERAS, SESSIONLESS, Call, Measured, call_once, have_wrk, load

ROOT = Path(__file__).resolve().parents[2]
TOOLBOX = ROOT / "tests" / "upstreams" / "toolbox_server.py"
FAST_ECHO = ROOT / "tests" / "upstreams" / "fast_echo_server.py"
TEXT = "bench-ping-7f3a"
# The same server as scripts/bench/load.py's baseline (kept here so no fastmcp import).
BARE_SERVER = """
import sys
from fastmcp import FastMCP
server = FastMCP("bare")

@server.tool
def echo(text: str) -> str:
    return text

server.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), show_banner=False,
           log_level="warning")
"""


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    tool: str
    arguments: dict[str, Any]
    marker: str
    pid: int

    def call(self, era: str) -> Call:
        return Call(self.url, self.tool, self.arguments, self.marker, era)


def direct_capacity(argv: list[str], seconds: float, window: int = 50) -> float:
    """Calls/s of a stdio upstream driven directly by a pipelined raw client."""
    peer = StdioPeer(argv, bench_env(Path(tempfile.gettempdir())))
    echo = {"name": "echo", "arguments": {"text": TEXT}}
    try:
        for _ in range(20):
            peer.tool(**echo)
        started = time.perf_counter()
        outstanding = {peer.request("tools/call", echo) for _ in range(window)}
        done = 0
        while outstanding:
            reply = peer.receive()
            outstanding.discard(reply["id"])
            assert TEXT in str(reply.get("result")), reply
            done += 1
            if time.perf_counter() - started < seconds:
                outstanding.add(peer.request("tools/call", echo))
        return done / (time.perf_counter() - started)
    finally:
        peer.close()


def measure(target: Target, era: str, connections: int, seconds: float, generator: str) -> Measured:
    pids = tree_pids(target.pid)
    cpu = cpu_seconds(pids)
    measured = load(target.call(era), connections, seconds, generator=generator)
    measured.server_cpu_s = cpu_seconds(pids) - cpu
    return measured


def warm(target: Target) -> None:
    """A few calls per era, so upstreams are started and a broken target fails here."""
    for era in ERAS:
        for _ in range(3):
            wrong = call_once(target.call(era))
            if wrong is not None:
                raise SystemExit(f"{target.label} ({era}) does not answer correctly: {wrong}")


def row(label: str, runs: list[Measured], base: float) -> str:
    rate = statistics.median(m.rate for m in runs)
    p50 = statistics.median(m.p50_ms for m in runs)
    p99 = statistics.median(m.p99_ms for m in runs)
    errors = sum(m.errors for m in runs)
    seconds = sum(m.seconds for m in runs)
    client = sum(m.client_cpu_s for m in runs) / seconds * 100
    calls = sum(m.calls for m in runs)
    server = sum(m.server_cpu_s for m in runs) / max(calls, 1) * 1000
    ratio = rate / base if base else 0.0
    sample = f"  e.g. {runs[-1].error_samples[0]}" if errors and runs[-1].error_samples else ""
    return (
        f"  {label:<8} {rate:8.0f} calls/s  p50 {p50:7.2f} ms  p99 {p99:8.2f} ms  "
        f"x bare {ratio:4.2f}  errors {errors}  generator CPU {client:3.0f}% of a core  "
        f"server CPU {server:.2f} ms/call ({server * rate / 1000:.2f} cores){sample}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s each")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 1.0, 1
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if have_wrk() else "python"
    print(
        f"machine: {machine()}; generator {generator}; {args.rounds} round(s) x "
        f"{args.seconds:g} s per target, era and connection count"
    )
    results: dict[tuple[str, int, str], list[Measured]] = defaultdict(list)
    capacity: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="archon-http-load-") as tmp:
        work = Path(tmp)
        manifests = work / "manifests"
        write_manifest(manifests, "fast", [sys.executable, str(FAST_ECHO)])
        write_manifest(manifests, "toolbox", [sys.executable, str(TOOLBOX)])
        env = bench_env(
            work / "data", breakers_enabled="false", tool_concurrency="{}", log_level="warning"
        )
        bare, bare_url = start_bare_http(work, BARE_SERVER)
        gateway, url = start_http_gateway(work, manifests, env)
        try:
            echo = {"text": TEXT}
            targets = [
                Target("bare", bare_url, "echo", echo, TEXT, bare.pid),
                Target("native", url, "gateway_info", {}, "transports", gateway.pid),
                Target("fast", url, "fast_echo", echo, TEXT, gateway.pid),
                Target("fastmcp", url, "toolbox_echo", echo, TEXT, gateway.pid),
            ]
            for target in targets:
                warm(target)
            for _ in range(args.rounds):
                for name, server in (("fastmcp", TOOLBOX), ("fast", FAST_ECHO)):
                    capacity[name].append(
                        direct_capacity([sys.executable, str(server)], args.seconds)
                    )
                for era in ERAS:
                    for connections in args.connections:
                        for target in targets:
                            results[(era, connections, target.label)].append(
                                measure(target, era, connections, args.seconds, generator)
                            )
        finally:
            stop(gateway)
            stop(bare)
    return report(results, capacity, args.connections, [t.label for t in targets])


def report(
    results: dict[tuple[str, int, str], list[Measured]],
    capacity: dict[str, list[float]],
    connection_counts: list[int],
    labels: list[str],
) -> int:
    def rate(era: str, connections: int, label: str) -> float:
        return statistics.median(m.rate for m in results[(era, connections, label)])

    errors = 0
    for era in ERAS:
        kind = "session-less" if era == SESSIONLESS else "handshake, Mcp-Session-Id"
        for connections in connection_counts:
            print(f"{era} ({kind}), {connections} connection(s):")
            base = rate(era, connections, "bare")
            for label in labels:
                runs = results[(era, connections, label)]
                errors += sum(m.errors for m in runs)
                print(row(label, runs, base))
        low, high = min(connection_counts), max(connection_counts)
        if low != high:
            scaling = ", ".join(
                f"{label} {rate(era, high, label) / max(rate(era, low, label), 1e-9):.2f}"
                for label in labels
            )
            print(f"  throughput {high} clients / {low} client: {scaling}")
        direct = statistics.median(capacity["fastmcp"])
        proxied = rate(era, high, "fastmcp")
        print(
            f"  FastMCP stdio upstream direct capacity {direct:.0f} calls/s (pipelined raw "
            f"client); through the gateway at {high} connections {proxied:.0f} calls/s = "
            f"{proxied / direct * 100:.0f} % of it (goal >= 80 %)"
        )
    fast = statistics.median(capacity["fast"])
    print(f"fast echo stdio upstream direct capacity {fast:.0f} calls/s (pipelined raw client)")
    print(f"errors in all measurements: {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
