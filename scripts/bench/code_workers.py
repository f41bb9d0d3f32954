#!/usr/bin/env python
"""Offloaded code-tool jobs: the project's worker pool (allow-listed environment) against
anyio's process pool (which it replaced: anyio's workers inherit the gateway's secrets),
measured in the same run, rounds interleaved (A B A B). Per job: a no-op (the pool's own
cost) and code_analyze on a large module; and a cold start (spawn + first job).

    python scripts/bench/code_workers.py [--rounds 6] [--jobs 40] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_process

from archon_gateway.core.child_env import child_env
from archon_gateway.tools.codegen.offload import run_in_worker
from archon_gateway.tools.codegen.workers import WorkerPool

UNIT = "def handler_{n}(value: int) -> int:\n    if value > {n}:\n        return value * 2\n"
UNIT += "    return value\n\n\n"
CODE = "".join(UNIT.format(n=n) for n in range(1500))  # about 130 KB

Run = Callable[..., Awaitable[Any]]


def anyio_pool(limiter: anyio.CapacityLimiter) -> Run:
    async def run(function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_process.run_sync(function, *args, cancellable=True, limiter=limiter)

    return run


async def per_job_ms(run: Run, jobs: int, function: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    for _ in range(jobs):
        await run(function, *args)
    return (time.perf_counter() - started) / jobs * 1000


async def cold_start_ms(
    make: Callable[[], Awaitable[tuple[Run, Callable[[], Awaitable[None]]]]],
) -> float:
    run, close = await make()
    started = time.perf_counter()
    await run(run_in_worker, "analyze", ("x = 1\n", None))
    elapsed = (time.perf_counter() - started) * 1000
    await close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.jobs = 2, 5
    print(
        f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}  module={len(CODE)} bytes  "
        f"rounds={args.rounds} jobs/round={args.jobs}"
    )
    ours = WorkerPool(1, child_env(os.environ))
    theirs = anyio_pool(anyio.CapacityLimiter(1))
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for run in (ours.run, theirs):  # warm: both pools have a worker with imports done
            await run(run_in_worker, "analyze", (CODE, None))
        for _ in range(args.rounds):
            for label, run in (("worker pool", ours.run), ("anyio pool", theirs)):
                noop = await per_job_ms(run, args.jobs, os.getpid)
                analyze = await per_job_ms(run, args.jobs, run_in_worker, "analyze", (CODE, None))
                results.setdefault((label, "no-op"), []).append(noop)
                results.setdefault((label, "analyze"), []).append(analyze)
    finally:
        await ours.aclose()

    async def make_ours() -> tuple[Run, Callable[[], Awaitable[None]]]:
        pool = WorkerPool(1, child_env(os.environ))
        return pool.run, pool.aclose

    async def make_theirs() -> tuple[Run, Callable[[], Awaitable[None]]]:
        async def nothing() -> None:
            return None

        return anyio_pool(anyio.CapacityLimiter(1)), nothing

    for _ in range(max(1, args.rounds // 2)):
        results.setdefault(("worker pool", "cold start"), []).append(await cold_start_ms(make_ours))
        # anyio reuses its one pool per event loop: run it in a fresh loop to start cold.
        results.setdefault(("anyio pool", "cold start"), []).append(
            await anyio.to_thread.run_sync(lambda: anyio.run(cold_start_ms, make_theirs))
        )
    for job in ("no-op", "analyze", "cold start"):
        mine = statistics.median(results[("worker pool", job)])
        base = statistics.median(results[("anyio pool", job)])
        print(
            f"  {job:10s}  worker pool {mine:8.2f} ms   anyio pool (baseline) {base:8.2f} ms   "
            f"ratio {mine / base:.2f}x"
        )


if __name__ == "__main__":
    anyio.run(main)
