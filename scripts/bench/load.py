#!/usr/bin/env python
"""Load and faults over streamable HTTP: C concurrent clients x N calls each, mixed native
(`code_analyze` on a small module) and proxied (`chaos_chaos`, an upstream that fails, hangs
or crashes on ~1 % of calls), against a real gateway process on 127.0.0.1.

Reports calls/s, p50/p99 latency, errors by kind and hung calls (a call not ended within
its limit + 1 s), and the gateway's RSS, fds and threads before and after (after the load,
once idle connections and sessions are closed). Baseline, same run, rounds interleaved: a
bare FastMCP streamable-HTTP server with one echo tool, driven by the same clients.

    python scripts/bench/load.py [--clients 100] [--calls 100] [--rounds 2] [--check] [--quick]

`--check` exits 1 on a hung call or when fds are not back near their baseline (the
suite runs a small version this way: tests/reliability/test_load.py). The client is Python
(fastmcp), which saturates these 2 cores before the server does at high concurrency; the
ratio to the bare server in the same run is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from fastmcp import Client

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine, pct  # noqa: E402

FAULTY = REPO / "tests" / "upstreams" / "faulty_server.py"
CALL_LIMIT = 2.0  # the chaos tool's time limit (hangs end here)
SMALL_MODULE = "import httpx\n\n\nasync def fetch(url: str) -> str:\n    return url\n"

BARE_SERVER = textwrap.dedent(
    """
    import sys
    from fastmcp import FastMCP
    server = FastMCP("bare")

    @server.tool
    def echo(text: str) -> str:
        return text

    server.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), show_banner=False,
               log_level="warning")
    """
)


@dataclass
class Outcome:
    seconds: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    hung: int = 0
    wall: float = 0.0


def error_kind(text: str) -> str:
    for needle, kind in (
        ("timed out", "timeout"),
        ("busy", "busy"),
        ("circuit open", "circuit_open"),
        ("retry in", "restarting"),
        ("failed on purpose", "upstream_error"),
        ("upstream", "upstream_down"),
    ):
        if needle in text:
            return kind
    return "other"


Calls = list[tuple[str, dict[str, str], float]]  # tool, arguments, its time limit


async def drive(url: str, clients: int, calls: int, tools: Calls, slack: float) -> Outcome:
    outcome = Outcome()

    async def client_loop(index: int) -> None:
        async with Client(url, timeout=CALL_LIMIT + 30) as client:
            for call in range(calls):
                name, arguments, limit = tools[(index + call) % len(tools)]
                started = time.perf_counter()
                try:
                    result = await client.call_tool(name, arguments, raise_on_error=False)
                    if result.is_error:
                        text = " ".join(getattr(b, "text", "") for b in result.content)
                        outcome.errors[error_kind(text)] += 1
                except Exception as exc:  # a transport failure is a finding, not a crash
                    outcome.errors[f"client:{type(exc).__name__}"] += 1
                took = time.perf_counter() - started
                outcome.seconds.append(took)
                if took > limit + slack:
                    outcome.hung += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(clients):
            tg.start_soon(client_loop, index)
    outcome.wall = time.perf_counter() - started
    return outcome


def proc_counts(pid: int) -> tuple[int, int, int]:
    """RSS (kB), open fds, threads of `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def start_gateway(
    work: Path, chaos_rate: float, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    manifests = work / "manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "chaos.toml").write_text(
        "\n".join(
            [
                'name = "chaos"',
                f"command = {json.dumps(sys.executable)}",
                f'args = [{json.dumps(str(FAULTY))}, "chaos"]',
                f"timeout = {CALL_LIMIT}",
                "[env]",
                f'FAULTY_CHAOS_RATE = "{chaos_rate}"',
            ]
        )
        + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env |= {
        "ARCHON_DATA_DIR": str(work / "data"),
        "ARCHON_MANIFESTS_DIR": str(manifests),
        "ARCHON_UPSTREAM_RESTART_BACKOFF": "0.1",
        "ARCHON_BREAKERS_ENABLED": "false",  # measure the faults themselves, not fast-fails
        "ARCHON_TOOL_CONCURRENCY": "{}",
        **(extra_env or {}),
    }
    stderr = (work / "gateway.stderr").open("wb")
    gateway = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("archon-gateway")),
            "serve",
            "--transport",
            "http",
            "--port",
            "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"streamable HTTP at (\S+)", (work / "gateway.stderr").read_text())
        if found:
            return gateway, found.group(1)
        time.sleep(0.1)
    gateway.kill()
    raise SystemExit("the gateway did not start within 60 s")


def start_bare(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = work / "bare.py"
    script.write_text(BARE_SERVER)
    bare = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return bare, url
        except OSError:
            time.sleep(0.1)
    bare.kill()
    raise SystemExit("the bare server did not start within 60 s")


def show(label: str, outcome: Outcome) -> float:
    count = len(outcome.seconds)
    rate = count / outcome.wall if outcome.wall else 0.0
    print(
        f"{label:8} {count:6d} calls  {rate:7.1f} calls/s  p50 {pct(outcome.seconds, 0.5):7.1f} ms"
        f"  p99 {pct(outcome.seconds, 0.99):7.1f} ms  hung {outcome.hung}  "
        f"errors {dict(outcome.errors) or '{}'}"
    )
    return rate


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chaos-rate", type=float, default=0.01)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    parser.add_argument(
        "--slack", type=float, default=1.0, help="a call is hung past its limit + this (s)"
    )
    args = parser.parse_args()
    if args.quick:
        args.clients, args.calls, args.rounds = 5, 5, 1
    print(
        f"machine: {machine()}; {args.clients} clients x {args.calls} calls, "
        f"{args.rounds} round(s), chaos rate {args.chaos_rate}"
    )
    mixed: Calls = [
        ("code_analyze", {"code": SMALL_MODULE}, 60.0),
        ("chaos_chaos", {"text": "hi"}, CALL_LIMIT),
    ]
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gateway, url = start_gateway(work, args.chaos_rate)
        bare, bare_url = (None, "") if args.no_baseline else start_bare(work)
        try:
            async with Client(url) as warm:  # start the upstream, load the code tools
                await warm.call_tool("code_analyze", {"code": SMALL_MODULE})
            before = proc_counts(gateway.pid)
            rates: dict[str, list[float]] = {"gateway": [], "bare": []}
            hung = 0
            for _ in range(args.rounds):
                outcome = await drive(url, args.clients, args.calls, mixed, args.slack)
                rates["gateway"].append(show("gateway", outcome))
                hung += outcome.hung
                if bare is not None:
                    echo = [("echo", {"text": "hi"}, CALL_LIMIT)]
                    base = await drive(bare_url, args.clients, args.calls, echo, args.slack)
                    rates["bare"].append(show("bare", base))
            await anyio.sleep(2)  # sessions and connections close
            after = proc_counts(gateway.pid)
            print(
                f"gateway before: rss {before[0] / 1024:.0f} MB, fds {before[1]}, "
                f"threads {before[2]}; after: rss {after[0] / 1024:.0f} MB, fds {after[1]}, "
                f"threads {after[2]}"
            )
            if rates["bare"]:
                ratio = statistics.median(rates["gateway"]) / statistics.median(rates["bare"])
                print(f"throughput ratio gateway/bare (medians): {ratio:.2f}")
            if hung:
                failures.append(f"{hung} call(s) did not end within their limit + {args.slack:g} s")
            if after[1] > before[1] + 8:
                failures.append(f"fds grew from {before[1]} to {after[1]}")
            # Threads are reported, not checked: anyio's worker threads idle out after 10 s.
        finally:
            for process in (gateway, bare):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=20)
    for failure in failures:
        print("FAIL:", failure)
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
