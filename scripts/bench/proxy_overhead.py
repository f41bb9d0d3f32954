#!/usr/bin/env python
"""Proxy overhead: the same echo upstream (tests/upstreams/toolbox_server.py) called
directly and through the gateway, in the same run.

1. stdio, raw JSON-RPC client: direct vs the gateway's stdio front door.
   1,000 sequential calls (p50/p99) and 20 bursts of 50 concurrent calls.
2. MCP SDK client: direct stdio vs the gateway's HTTP front door.
   1,000 sequential calls (p50/p99) and 50 concurrent clients x 20 calls each.
3. 1,000 timeouts in a row through an in-process gateway: tasks, fds and RSS before/after.
4. fastmcp 4.2.3 `Client` over stdio, both protocol eras (default 2026-07-28 and
   `mode="legacy"`): the upstream directly vs through the gateway's stdio front door, the
   same client code on both sides, interleaved rounds (3 x 300 calls); p50 ratio (goal
   <= 1.3x) and CPU ms per call of the client, the gateway and the upstream.

    python scripts/bench/proxy_overhead.py [--calls 1000] [--only client-stdio] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from benchlib import StdioPeer, child_pids, cpu_seconds, machine, pct
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[2]
TOOLBOX = ROOT / "tests" / "upstreams" / "toolbox_server.py"
GATEWAY = str(Path(sys.executable).with_name("archon-gateway"))
ECHO = {"name": "echo", "arguments": {"text": "ping"}}


def line(label: str, base: list[float], other: list[float]) -> None:
    b50, o50 = pct(base, 0.5), pct(other, 0.5)
    b99, o99 = pct(base, 0.99), pct(other, 0.99)
    print(
        f"{label:<34} direct p50 {b50:7.3f} ms p99 {b99:7.3f} | gateway p50 {o50:7.3f} ms "
        f"p99 {o99:7.3f} | ratio p50 {o50 / b50:4.2f}x (+{o50 - b50:.3f} ms) p99 {o99 / b99:4.2f}x"
    )


def raw_sequential(peer: StdioPeer, tool: dict[str, Any], calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        peer.tool(**tool)
        times.append(time.perf_counter() - started)
    return times


def raw_bursts(peer: StdioPeer, tool: dict[str, Any], size: int, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        ids = {peer.request("tools/call", tool) for _ in range(size)}
        while ids:
            ids.discard(peer.receive()["id"])
        times.append(time.perf_counter() - started)
    return times


def bench_raw_stdio(env: dict[str, str], manifests: Path, calls: int, quick: bool) -> None:
    warm_up, bursts = (20, 5) if quick else (100, 20)
    proxied = {"name": "toolbox_echo", "arguments": {"text": "ping"}}
    direct = StdioPeer([sys.executable, str(TOOLBOX)], env)
    gateway = StdioPeer(
        [GATEWAY, "serve", "--log-level", "warning", "--manifests", str(manifests)], env
    )
    for peer, tool in ((direct, ECHO), (gateway, proxied)):
        raw_sequential(peer, tool, warm_up)
    base = raw_sequential(direct, ECHO, calls)
    ours = raw_sequential(gateway, proxied, calls)
    line(f"stdio, {calls} sequential calls", base, ours)
    line(
        f"stdio, {bursts} bursts of 50 concurrent",
        *(
            raw_bursts(peer, tool, 50, bursts)
            for peer, tool in ((direct, ECHO), (gateway, proxied))
        ),
    )
    direct.close()
    gateway.close()


async def sdk_sequential(session: Any, tool: str, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await session.call_tool(tool, {"text": "ping"})
        times.append(time.perf_counter() - started)
        assert not result.is_error, result.content
    return times


async def sdk_concurrent(make_session: Any, tool: str, clients: int, calls: int) -> list[float]:
    times: list[float] = []

    async def one_client() -> None:
        async with make_session() as session:
            times.extend(await sdk_sequential(session, tool, calls))

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one_client)
    return times


async def bench_sdk(env: dict[str, str], manifests: Path, calls: int, quick: bool) -> None:
    warm_up, hangs, clients, per_client = (20, 1, 10, 5) if quick else (100, 3, 50, 20)
    params = StdioServerParameters(command=sys.executable, args=[str(TOOLBOX)], env=env)
    gateway = await anyio.open_process(
        [GATEWAY, "serve", "--transport", "http", "--port", "0", "--manifests", str(manifests)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        assert gateway.stderr is not None
        text = ""
        while not (found := re.search(r"at (http://\S+)", text)):
            text += (await gateway.stderr.receive()).decode()
        url = found.group(1)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as direct:
            await direct.initialize()
            async with Client(url) as http:
                await sdk_sequential(direct, "echo", warm_up)
                await sdk_sequential(http, "toolbox_echo", warm_up)
                base = await sdk_sequential(direct, "echo", calls)
                ours = await sdk_sequential(http, "toolbox_echo", calls)
                native = []
                for _ in range(calls):
                    started = time.perf_counter()
                    await http.call_tool("gateway_info", {})
                    native.append(time.perf_counter() - started)
                hung = []
                # Three, not more: five timeouts in a row would (rightly) open the breaker.
                for _ in range(hangs):
                    started = time.perf_counter()
                    result = await http.call_tool("toolbox_hang", {})
                    hung.append(time.perf_counter() - started - 1.0)
                    assert result.is_error
            line(f"SDK client: stdio vs HTTP, {calls} seq", base, ours)
            print(
                f"{'  (HTTP front door alone)':<34} native gateway_info over HTTP p50 "
                f"{pct(native, 0.5):.3f} ms: the HTTP transport's own cost"
            )
            print(
                f"{'  (timeout precision)':<34} 1 s limit on a hung tool: returned after the limit "
                f"+{pct(hung, 0.5):.1f} ms p50, +{max(hung) * 1000:.1f} ms max (goal < +500 ms)"
            )

            class Shared:
                async def __aenter__(self) -> Any:
                    return direct

                async def __aexit__(self, *exc: object) -> None:
                    return None

            base = await sdk_concurrent(Shared, "echo", clients, per_client)
        ours = await sdk_concurrent(lambda: Client(url), "toolbox_echo", clients, per_client)
        line(f"SDK client: {clients} clients x {per_client} calls", base, ours)
    finally:
        # Stopped even when a measurement fails, so no gateway outlives the benchmark.
        gateway.terminate()
        await gateway.wait()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bench_timeouts(manifests_src: Path, data: Path, count: int) -> None:
    from fastmcp import Client as FastClient

    from archon_gateway.gateway.app import build_gateway
    from archon_gateway.gateway.settings import Settings

    manifests = data / "timeouts"
    manifests.mkdir()
    text = (manifests_src / "toolbox.toml").read_text().replace("hang = 1.0", "hang = 0.01")
    (manifests / "toolbox.toml").write_text(text)
    # Breakers off: a run of timeouts would open the upstream's breaker and fast-fail.
    settings = Settings(
        data_dir=data, manifests_dir=manifests, log_level="warning", breakers_enabled=False
    )
    async with FastClient(build_gateway(settings, environ=dict(os.environ))) as client:
        for _ in range(20):
            await client.call_tool("toolbox_hang", {}, raise_on_error=False)
        before = (len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd")), rss_mb())
        started = time.perf_counter()
        for _ in range(count):
            result = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            assert result.is_error
        elapsed = time.perf_counter() - started
        await anyio.sleep(0.2)
        after = (len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd")), rss_mb())
        ok = await client.call_tool("toolbox_echo", {"text": "after"})
        assert ok.data == "after"
    print(
        f"{count} timeouts in {elapsed:.1f} s (10 ms limit each): tasks {before[0]} -> {after[0]}, "
        f"fds {before[1]} -> {after[1]}, RSS {before[2]:.1f} -> {after[2]:.1f} MB "
        f"(+{after[2] - before[2]:.1f} MB); next call ok"
    )


@dataclass
class Side:
    """One side of the fastmcp-Client comparison: a connected client and the processes it
    started (the upstream, or the gateway and its upstream)."""

    label: str
    client: Any
    tool: str
    pids: dict[str, list[int]] = field(default_factory=dict)
    p50s: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    calls: int = 0

    async def round(self, calls: int) -> None:
        before = {role: cpu_seconds(pids) for role, pids in self.pids.items()}
        client_before = time.process_time()
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            result = await self.client.call_tool(self.tool, {"text": "ping"})
            times.append(time.perf_counter() - started)
            assert result.data == "ping", result
        self.cpu["client"] = self.cpu.get("client", 0.0) + time.process_time() - client_before
        for role, pids in self.pids.items():
            self.cpu[role] = self.cpu.get(role, 0.0) + cpu_seconds(pids) - before[role]
        self.p50s.append(pct(times, 0.5))
        self.calls += calls

    def cpu_text(self) -> str:
        per_call = {role: seconds / self.calls * 1000 for role, seconds in self.cpu.items()}
        return ", ".join(f"{role} {ms:.2f}" for role, ms in per_call.items())


async def connect_side(
    stack: AsyncExitStack,
    label: str,
    argv: list[str],
    env: dict[str, str],
    tool: str,
    mode: str,
    log: Path,
) -> Side:
    """A fastmcp Client on `argv` over stdio, warmed up; the processes it started found by
    diffing this process's children (the client owns them, so no private API is needed)."""
    from fastmcp import Client as FastClient
    from fastmcp.client.transports import StdioTransport

    kwargs: dict[str, Any] = {} if mode == "auto" else {"mode": mode}
    before = set(child_pids(os.getpid()))
    client = await stack.enter_async_context(
        FastClient(StdioTransport(argv[0], argv[1:], env=env, log_file=log), **kwargs)
    )
    side = Side(label, client, tool)
    for _ in range(20):  # warm-up; the gateway starts its upstream on first use
        await client.call_tool(tool, {"text": "ping"})
    (started,) = set(child_pids(os.getpid())) - before
    below = child_pids(started)
    if below:  # the gateway and, below it, the upstream
        side.pids = {"gateway": [started], "upstream": below}
    else:
        side.pids = {"upstream": [started]}
    return side


async def bench_client_stdio(env: dict[str, str], manifests: Path, rounds: int, calls: int) -> None:
    direct_argv = [sys.executable, str(TOOLBOX)]
    gateway_argv = [GATEWAY, "serve", "--log-level", "warning", "--manifests", str(manifests)]
    print(
        f"fastmcp Client over stdio, {rounds} interleaved rounds x {calls} calls, "
        f"CPU ms per call in brackets:"
    )
    for mode, era in (("auto", "default era, 2026-07-28"), ("legacy", "mode=legacy, 2025-11-25")):
        async with AsyncExitStack() as stack:
            log = manifests.parent / "client-stdio.stderr"
            direct = await connect_side(stack, "direct", direct_argv, env, "echo", mode, log)
            gateway = await connect_side(
                stack, "gateway", gateway_argv, env, "toolbox_echo", mode, log
            )
            for _ in range(rounds):
                for side in (direct, gateway):
                    await side.round(calls)
        base = statistics.median(direct.p50s)
        ours = statistics.median(gateway.p50s)
        print(
            f"  {era}: direct p50 {base:.3f} ms ({direct.cpu_text()}) | gateway stdio p50 "
            f"{ours:.3f} ms ({gateway.cpu_text()}) | ratio {ours / base:.2f}x "
            f"(+{ours - base:.3f} ms; goal <= 1.3x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="fastmcp Client mode: rounds")
    parser.add_argument(
        "--client-calls", type=int, default=300, help="fastmcp Client mode: calls per round"
    )
    parser.add_argument("--timeouts", type=int, default=1000)
    parser.add_argument(
        "--only", choices=["raw", "sdk", "timeouts", "client-stdio"], help="run one part"
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds per part")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.timeouts, args.rounds, args.client_calls = 100, 50, 2, 50
    data = Path(tempfile.mkdtemp(prefix="archon-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["ARCHON_DATA_DIR"] = str(data)
    manifests = data / "manifests"
    manifests.mkdir()
    (manifests / "toolbox.toml").write_text(
        f'command = "{sys.executable}"\nargs = ["{TOOLBOX}"]\n\n[tool_timeouts]\nhang = 1.0\n'
    )
    print(f"machine: {machine()}")
    if args.only in (None, "raw"):
        bench_raw_stdio(env, manifests, args.calls, args.quick)
    if args.only in (None, "sdk"):
        anyio.run(bench_sdk, env, manifests, args.calls, args.quick)
    if args.only in (None, "client-stdio"):
        anyio.run(bench_client_stdio, env, manifests, args.rounds, args.client_calls)
    if args.only in (None, "timeouts"):
        anyio.run(bench_timeouts, manifests, data, args.timeouts)


if __name__ == "__main__":
    main()
