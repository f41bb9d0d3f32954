#!/usr/bin/env python
"""What idle HTTP sessions and idle connections cost a gateway, and whether /health stays
fast while a flood of idle connections is held.

One gateway process (HTTP, no upstreams, default limits except a short
`http_session_idle_s` so sessions expire between rounds). Rounds interleave A B A B:
  sessions: RSS with none open (baseline) vs with N idle handshake-era sessions open ->
            RSS per idle session; then the RSS once they have all expired.
  flood:    /health p50/p99 (a new connection per probe, as a monitor makes) and RSS with
            no flood (baseline) vs while C idle TCP connections are held open -> ratios;
            non-200 answers are counted, never timed.

    python scripts/bench/listener_bounds.py [--sessions 1000] [--connections 2000]
        [--probes 300] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import re
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import bench_env, machine, pct, start_http_gateway, stop

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
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def open_sessions(web: httpx.Client, url: str) -> float:
    found = re.search(r'archon_active_sessions\{transport="http"\} (\S+)', web.get(url).text)
    return float(found.group(1)) if found else float("nan")


def open_session(web: httpx.Client, url: str) -> None:
    reply = web.post(url, json=INITIALIZE, headers=HEADERS)
    reply.raise_for_status()
    headers = HEADERS | {
        "mcp-session-id": reply.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    web.post(url, json=done, headers=headers).raise_for_status()


def wait_for_sessions(web: httpx.Client, metrics: str, wanted: float, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if open_sessions(web, metrics) == wanted:
            return True
        time.sleep(0.2)
    return False


def health_probes(host: str, port: int, count: int) -> tuple[list[float], int]:
    """`count` GET /health, each on a new connection; (durations of 200s, other answers)."""
    times: list[float] = []
    failed = 0
    for _ in range(count):
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/health")
            status = conn.getresponse().status
            conn.close()
        except OSError:
            status = 0
        if status == 200:
            times.append(time.perf_counter() - started)
        else:
            failed += 1
    return times, failed


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=60.0, help="http_session_idle_s")
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.connections, args.probes, args.rounds, args.idle = 100, 600, 60, 1, 5
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    print(
        f"machine: {machine()}; {args.sessions} sessions, {args.connections} idle connections, "
        f"{args.probes} /health probes, {args.rounds} round(s); http_session_idle_s={args.idle:g}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "manifests").mkdir()
        env = bench_env(work / "data", http_session_idle_s=str(args.idle))
        gateway, url = start_http_gateway(work, work / "manifests", env)
        try:
            return run(gateway.pid, url, args)
        finally:
            stop(gateway)


def run(pid: int, url: str, args: argparse.Namespace) -> int:
    base = url.removesuffix("/mcp")
    host, port = base.removeprefix("http://").split(":")
    metrics = base + "/metrics"
    per_session: list[float] = []
    rows: list[str] = []
    idle_p50: list[float] = []
    idle_p99: list[float] = []
    flood_p50: list[float] = []
    flood_p99: list[float] = []
    flood_failed = 0
    rss_idle: list[float] = []
    rss_flood: list[float] = []
    still_open: list[int] = []
    with httpx.Client(timeout=30) as web:
        for _ in range(5):  # warm the session path up once
            open_session(web, url)
        wait_for_sessions(web, metrics, 0, args.idle + 30)
        health_probes(host, int(port), 20)
        for round_no in range(1, args.rounds + 1):
            # A: no sessions; B: N idle sessions.
            before = rss_mb(pid)
            for _ in range(args.sessions):
                open_session(web, url)
            held = open_sessions(web, metrics)
            during = rss_mb(pid)
            per_session.append((during - before) * 1024 / max(held, 1))
            expired = wait_for_sessions(web, metrics, 0, args.idle + 60)
            after = rss_mb(pid)
            rows.append(
                f"round {round_no} sessions: RSS {before:.1f} MB with none, {during:.1f} MB "
                f"with {held:g} open ({per_session[-1]:.1f} kB each), {after:.1f} MB after "
                f"{'all expired' if expired else 'waiting for expiry timed out'}"
            )
            # A: no flood; B: C idle connections held while probing.
            times, failed = health_probes(host, int(port), args.probes)
            idle_p50.append(pct(times, 0.5))
            idle_p99.append(pct(times, 0.99))
            rss_idle.append(rss_mb(pid))
            fds_idle = open_fds(pid)
            flood = [socket.create_connection((host, int(port))) for _ in range(args.connections)]
            try:
                # Probes queue behind the flood: once one is answered, all were accepted.
                times, failed = health_probes(host, int(port), args.probes)
                rss_flood.append(rss_mb(pid))
                fds_flood = open_fds(pid)
                flood_failed += failed
                flood_p50.append(pct(times, 0.5) if times else float("nan"))
                flood_p99.append(pct(times, 0.99) if times else float("nan"))
                still_open.append(sum(not closed_by_peer(s) for s in flood))
            finally:
                for sock in flood:
                    sock.close()
            rows.append(
                f"round {round_no} flood: /health p50/p99 {idle_p50[-1]:.2f}/{idle_p99[-1]:.2f} "
                f"ms idle vs {flood_p50[-1]:.2f}/{flood_p99[-1]:.2f} ms with "
                f"{still_open[-1]} of {args.connections} idle connections still open at the end; "
                f"RSS {rss_idle[-1]:.1f} -> {rss_flood[-1]:.1f} MB; gateway fds {fds_idle} -> "
                f"{fds_flood}; non-200 answers {failed}"
            )
    for row in rows:
        print(row)
    mean = sum(per_session) / len(per_session)
    p99_idle, p99_flood = max(idle_p99), max(flood_p99)
    each = ", ".join(f"{x:.1f}" for x in per_session)
    print(f"RSS per idle session: {mean:.1f} kB (rounds: {each})")
    print(
        f"RSS with {args.connections} idle connections: {max(rss_flood):.1f} MB vs "
        f"{max(rss_idle):.1f} MB without (+{max(rss_flood) - max(rss_idle):.1f} MB, "
        f"x{max(rss_flood) / max(rss_idle):.2f})"
    )
    print(
        f"/health p99 during the flood: {p99_flood:.2f} ms vs {p99_idle:.2f} ms idle "
        f"(x{p99_flood / p99_idle:.2f}); non-200 answers during floods: {flood_failed}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
