#!/usr/bin/env python
"""Native time limits and event-loop health under heavy code-tool work.

A gateway process (HTTP) with `tool_timeout` = L runs `code_correct` on a ~1 MB module
(three at once; the concurrency limit is raised so none is refused): how long past L each
call answers (goal: < 100 ms), and /health latency while they run, against /health latency
on the idle gateway in the same run (rounds interleaved: idle, busy, idle, busy ...).

    python scripts/bench/native_limits.py [--limit 3] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from fastmcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import machine, pct
from load import start_gateway

from tests.reliability.test_native_limits import heavy_code


async def health_times(base: str, until: anyio.Event, into: list[float]) -> None:
    async with httpx.AsyncClient(timeout=30) as web:
        while not until.is_set():
            started = time.perf_counter()
            await web.get(base + "/health")
            into.append(time.perf_counter() - started)
            await anyio.sleep(0.05)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.limit, args.rounds = 1.0, 1
    print(f"machine: {machine()}; limit {args.limit:g} s, 3 x code_correct on ~1 MB")
    code = heavy_code()
    idle: list[float] = []
    busy: list[float] = []
    overshoot: list[float] = []
    settings = {
        "ARCHON_TOOL_TIMEOUT": str(args.limit),
        "ARCHON_TOOL_CONCURRENCY": json.dumps({"code_correct": 8}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        gateway, url = start_gateway(Path(tmp), chaos_rate=0.0, extra_env=settings)
        base = url.removesuffix("/mcp")
        try:
            async with Client(url, timeout=120) as client:
                for _ in range(args.rounds):
                    done = anyio.Event()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(health_times, base, done, idle)
                        await anyio.sleep(2)
                        done.set()
                    done = anyio.Event()

                    async def heavy() -> None:
                        started = time.perf_counter()
                        await client.call_tool("code_correct", {"code": code}, raise_on_error=False)
                        overshoot.append(time.perf_counter() - started - args.limit)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(health_times, base, done, busy)
                        async with anyio.create_task_group() as calls:
                            for _ in range(3):
                                calls.start_soon(heavy)
                        done.set()
            status = await anyio.Path(f"/proc/{gateway.pid}/status").read_text()
            peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            print(f"gateway peak RSS after the heavy calls: {peak.split(':')[1].strip()}")
        finally:
            gateway.terminate()
            gateway.wait(timeout=20)
    print(
        f"answer past the limit: median {statistics.median(overshoot) * 1000:.0f} ms, "
        f"max {max(overshoot) * 1000:.0f} ms (goal < 100 ms)"
    )
    print(
        f"/health idle: p50 {pct(idle, 0.5):.1f} ms p99 {pct(idle, 0.99):.1f} ms; "
        f"during heavy calls: p50 {pct(busy, 0.5):.1f} ms p99 {pct(busy, 0.99):.1f} ms; "
        f"ratio p50 {pct(busy, 0.5) / pct(idle, 0.5):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
