#!/usr/bin/env python
"""What the middleware stack costs a native tool call, and how fast an open breaker fails.

All in one process, same run, rounds interleaved so machine noise hits both sides:
1. a native `echo` tool through FastMCP's in-memory client: the full gateway stack (error
   translation, metrics, stdio auth, breaker, timeout) vs a bare FastMCP server (none);
2. the same with the tool behind a (closed) breaker, i.e. every layer doing work;
3. the HTTP service-auth check (ASGI middleware with a valid token) vs the same app without,
   and the Host/Origin check (DNS-rebinding guard, allowed Host and Origin) likewise;
4. an open breaker: `breaker.call` fast-fail, and a whole tool call through the gateway that
   is fast-failed by an open breaker, against a successful call in the same run.

    python scripts/bench/middleware.py [--calls 2000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from fastmcp import Client, FastMCP
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from archon_gateway.core.audit import LogAuditSink
from archon_gateway.core.circuit_breaker import CircuitBreaker
from archon_gateway.core.errors import CircuitOpen
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.auth.decisions import Authenticator
from archon_gateway.gateway.auth.http_guard import HttpAuthMiddleware
from archon_gateway.gateway.call_pipeline import PipelineMiddleware
from archon_gateway.gateway.call_steps.breaker_guard import BreakerGuard
from archon_gateway.gateway.host_guard import HostGuard, HostRules, host_policy
from archon_gateway.gateway.settings import Settings

TOKEN = "bench-0123456789abcdef-token"


def echo(text: str) -> str:
    return text


def bare_server() -> FastMCP:
    server = FastMCP("bare")
    server.tool(echo)
    return server


def gateway_server(data_dir: Path, breaker: CircuitBreaker | None = None) -> FastMCP:
    settings = Settings(data_dir=data_dir, manifests_dir=data_dir, enable_external_gateway=False)
    server = build_gateway(settings, environ={})
    server.tool(echo)
    if breaker is not None:
        for layer in server.middleware:
            if isinstance(layer, PipelineMiddleware):
                for step in layer.pipeline.steps:
                    if isinstance(step, BreakerGuard):
                        step.breaker_for_tool = lambda tool: breaker if tool == "echo" else None
    return server


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": pick(0.50),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "mean": statistics.mean(ordered),
    }


async def timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def report(name: str, stats: dict[str, float], base: dict[str, float] | None = None) -> None:
    cells = "  ".join(f"{key} {value * 1e6:8.1f} us" for key, value in stats.items())
    ratio = (
        f"  ratio p50 {stats['p50'] / base['p50']:.3f}  mean {stats['mean'] / base['mean']:.3f}"
        if base
        else ""
    )
    print(f"  {name:<34} {cells}{ratio}")


async def tool_calls(calls: int, rounds: int, data_dir: Path) -> None:
    breaker = CircuitBreaker("bench", fail_max=5, reset_timeout=60)
    servers = {
        "bare FastMCP (no middleware)": bare_server(),
        "gateway, full stack": gateway_server(data_dir / "a"),
        "gateway, full stack + breaker": gateway_server(data_dir / "b", breaker),
    }
    samples: dict[str, list[float]] = {name: [] for name in servers}
    async with (
        Client(servers["bare FastMCP (no middleware)"]) as bare,
        Client(servers["gateway, full stack"]) as full,
        Client(servers["gateway, full stack + breaker"]) as guarded,
    ):
        clients = dict(zip(servers, (bare, full, guarded), strict=True))
        for client in clients.values():  # warm-up
            await timed(lambda c=client: c.call_tool("echo", {"text": "hi"}), 200)
        for _ in range(rounds):
            for name, client in clients.items():
                samples[name] += await timed(
                    lambda c=client: c.call_tool("echo", {"text": "hi"}), calls // rounds
                )
    print(f"native tool call, in-memory client ({calls} calls each, {rounds} interleaved rounds):")
    base = percentiles(samples["bare FastMCP (no middleware)"])
    for name, values in samples.items():
        report(name, percentiles(values), None if name.startswith("bare") else base)


async def http_auth(calls: int) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guarded = HttpAuthMiddleware(app, Authenticator("service", SecretStr(TOKEN)), LogAuditSink())
    scope = {
        "type": "http",
        "path": "/mcp",
        "headers": [(b"x-service-auth", TOKEN.encode()), (b"accept", b"application/json")],
        "client": ("127.0.0.1", 5000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    await timed(lambda: guarded(dict(scope), receive, send), 500)
    plain = await timed(lambda: app(dict(scope), receive, send), calls)
    checked = await timed(lambda: guarded(dict(scope), receive, send), calls)
    print(f"HTTP service-auth check (ASGI, valid token, {calls} requests):")
    base = percentiles(plain)
    report("app alone", base)
    report("app behind HttpAuthMiddleware", percentiles(checked), base)
    added = percentiles(checked)["mean"] - base["mean"]
    print(f"  added per request: {added * 1e6:.1f} us (mean)")


async def host_check(calls: int, rounds: int) -> None:
    """The guard on a request with the headers an SDK client sends, Host and Origin allowed
    (the path every legitimate browser-less request takes too: it reads the same headers)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    rules = HostRules(allowed_hosts=("gw.example:*",), allowed_origins=("https://app.example",))
    guarded = HostGuard(app, host_policy(rules, "127.0.0.1", 8787))
    headers = [
        (b"host", b"127.0.0.1:8787"),
        (b"origin", b"http://localhost:8787"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"python-httpx/0.28"),
        (b"mcp-protocol-version", b"2025-11-25"),
        (b"mcp-session-id", b"0123456789abcdef0123456789abcdef"),
        (b"content-length", b"120"),
    ]
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    await timed(lambda: guarded(dict(scope), receive, send), 500)
    plain: list[float] = []
    checked: list[float] = []
    for _ in range(rounds):  # interleaved: drift hits both
        plain += await timed(lambda: app(dict(scope), receive, send), calls // rounds)
        checked += await timed(lambda: guarded(dict(scope), receive, send), calls // rounds)
    print(f"HTTP Host/Origin check (ASGI, allowed, {calls} requests, {rounds} rounds):")
    base = percentiles(plain)
    report("app alone", base)
    report("app behind HostGuard", percentiles(checked), base)
    added = percentiles(checked)["mean"] - base["mean"]
    print(f"  added per request: {added * 1e6:.1f} us (mean)")


async def open_breaker(calls: int, data_dir: Path) -> None:
    breaker = CircuitBreaker("bench", fail_max=1, reset_timeout=3600)

    async def fail() -> None:
        raise OSError("down")

    async def fine() -> str:
        return "ok"

    with contextlib.suppress(OSError):
        await breaker.call(fail)
    assert breaker.current_state == "open"

    async def fast_fail() -> None:
        try:
            await breaker.call(fine)
        except CircuitOpen:
            return
        raise AssertionError("the breaker let a call through")

    closed = CircuitBreaker("closed")
    direct_ok = await timed(lambda: closed.call(fine), calls)
    direct_open = await timed(fast_fail, calls)

    server = gateway_server(data_dir / "c", breaker)
    async with Client(server) as client, Client(bare_server()) as bare:
        await timed(lambda: client.call_tool("gateway_info", {}), 100)
        await timed(lambda: bare.call_tool("echo", {"text": "x"}), 100)
        floor: list[float] = []
        through_open: list[float] = []
        for _ in range(5):
            floor += await timed(lambda: bare.call_tool("echo", {"text": "x"}), calls // 20)
            through_open += await timed(
                lambda: client.call_tool("echo", {"text": "x"}, raise_on_error=False),
                calls // 20,
            )
    print(f"open breaker fast-fail ({calls} direct, {calls // 4} through the gateway):")
    base = percentiles(direct_ok)
    report("breaker.call, closed, success", base)
    direct_stats = percentiles(direct_open)
    report("breaker.call, open -> CircuitOpen", direct_stats, base)
    goal = "met" if direct_stats["p99"] < 0.001 else "NOT met"
    p99_ms = direct_stats["p99"] * 1e3
    print(f"  goal p99 < 1 ms for the breaker's fast-fail: {goal} ({p99_ms:.4f} ms)")
    base = percentiles(floor)
    report("bare FastMCP echo (round-trip floor)", base)
    report("gateway call fast-failed by breaker", percentiles(through_open), base)
    print("  (the whole in-memory MCP round trip has a floor of its own: the bare line)")


async def main(calls: int, rounds: int) -> None:
    print(
        f"machine: nproc={os.cpu_count()} python={platform.python_version()} {platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        await tool_calls(calls, rounds, Path(tmp))
        await http_auth(calls * 5)
        await host_check(calls * 5, rounds)
        await open_breaker(calls, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 200, 2
    anyio.run(main, args.calls, args.rounds)
