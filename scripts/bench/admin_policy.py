#!/usr/bin/env python
"""What the admin-tool policy costs the calls and listings of an HTTP caller without an
admin credential (the common case on an open gateway: every one of its calls pays it).

All in one process, same run, rounds interleaved (A B A B) so machine noise hits both:
1. a tool call through the `AdminCalls` pipeline step (a non-admin tool, so it passes)
   vs the same `call_next` without the step, inside an anonymous HTTP request's context;
2. `HideAdminTools.list_tools` over the gateway's own tools (anonymous: filtered) vs the
   list untouched.

    python scripts/bench/admin_policy.py [--calls 20000] [--rounds 10] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from fastmcp.server.http import set_http_request
from starlette.requests import Request

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import machine, pct

from archon_gateway.gateway.admin_policy import AdminCalls, AdminRule, AdminTools, HideAdminTools
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.auth.http_guard import ADMIN_STATE
from archon_gateway.gateway.call_context import CallContext
from archon_gateway.gateway.settings import Settings


async def timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def line(name: str, samples: list[float], base: list[float] | None = None) -> str:
    p50 = pct(samples, 0.5) * 1e3  # pct gives milliseconds
    mean = sum(samples) / len(samples) * 1e6
    cells = f"p50 {p50:7.2f} us  mean {mean:7.2f} us"
    if base is not None:
        base_mean = sum(base) / len(base) * 1e6
        ratio = p50 / (pct(base, 0.5) * 1e3)
        cells += f"  ratio p50 {ratio:.2f}  added mean {mean - base_mean:+.2f} us"
    return f"  {name:<44} {cells}"


async def main(calls: int, rounds: int) -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), enable_external_gateway=False)
        server = build_gateway(settings, environ={})
        admin = AdminTools(server)
        rule = AdminRule(token_file=Path(tmp) / "admin-token", admin_scope="archon:admin")
        step = AdminCalls(admin, rule)
        hide = HideAdminTools(admin)
        tools = list(await server.local_provider.list_tools())

        async def call_next(_: Any) -> None:
            return None

        context = CallContext("gateway_info", {}, call_next)

        async def bare() -> None:
            await call_next(context)

        async def guarded() -> None:
            await step(context, call_next)

        async def untouched() -> None:
            return None

        async def filtered() -> None:
            await hide.list_tools(tools)

        scope = {"type": "http", "path": "/mcp", "headers": [], "state": {ADMIN_STATE: False}}
        samples: dict[str, list[float]] = {"bare": [], "hook": [], "list": [], "hidden": []}
        with set_http_request(Request(scope)):
            for warm in (bare, guarded, untouched, filtered):  # the admin names: learnt once
                await timed(warm, 500)
            for _ in range(rounds):
                samples["bare"] += await timed(bare, calls // rounds)
                samples["hook"] += await timed(guarded, calls // rounds)
                samples["list"] += await timed(untouched, calls // rounds // 10)
                samples["hidden"] += await timed(filtered, calls // rounds // 10)
        print(f"anonymous HTTP caller, {calls} calls, {rounds} interleaved rounds:")
        print(line("tools/call: call_next alone (baseline)", samples["bare"]))
        print(line("tools/call: through the AdminCalls step", samples["hook"], samples["bare"]))
        print(f"tools/list of the gateway's {len(tools)} native tools:")
        print(line("list untouched (baseline)", samples["list"]))
        print(line("HideAdminTools.list_tools", samples["hidden"], samples["list"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 2000, 2
    anyio.run(main, args.calls, args.rounds)
