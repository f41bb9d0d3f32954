#!/usr/bin/env python
"""Upstream supervision, measured through the gateway's own UpstreamPool and supervisor.

1. Death: from SIGKILL of an upstream to the failure of the call waiting on it (goal
   < 100 ms), for a plain process (its stdout closes with it: the baseline) and for one
   whose grandchild keeps stdout open (only the exit can be seen).
2. Recovery: from the kill to the upstream being ready again (restart backoff 0.05 s),
   against its cold start in the same run.
3. Flood: the process's peak RSS growth while an upstream sends one 50 MB line, with the
   default 16 MB message limit and with 1 MB, against the flood's size.

    python scripts/bench/supervision.py [--runs 20] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from benchlib import machine, pct

from archon_gateway.core.errors import GatewayError
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.restarts import RestartPolicy
from archon_gateway.upstreams.state import UpstreamState
from archon_gateway.upstreams.supervisor import Upstream

FAULTY = Path(__file__).resolve().parents[2] / "tests" / "upstreams" / "faulty_server.py"
FLOOD = 50 * 1024 * 1024


@asynccontextmanager
async def supervised(mode: str, log_dir: Path, **fields: Any) -> AsyncIterator[Upstream]:
    manifest = Manifest(
        name="victim",
        command=sys.executable,
        args=[str(FAULTY), mode],
        env={"FAULTY_CHILD_PID_FILE": str(log_dir / "child.pid")},
        **fields,
    )
    policy = RestartPolicy(backoff_initial=0.05, backoff_max=0.05, crash_loop_after=10_000)
    pool = UpstreamPool(
        [manifest], gateway_env=os.environ, log_dir=log_dir, default_timeout=60, policy=policy
    )
    async with pool.running():
        upstream = pool.upstreams["victim"]
        await upstream.wait_settled()
        assert upstream.state is UpstreamState.READY, upstream.last_error
        yield upstream


async def until_restarted(upstream: Upstream, runs: int) -> None:
    """Until a run after the `runs`th is ready."""
    while upstream.runs <= runs or upstream.state is not UpstreamState.READY:
        await upstream.wait_changed()


async def one_death(mode: str) -> tuple[float, float, float]:
    """(cold start, kill -> call failed, kill -> ready again), in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        async with supervised(mode, Path(tmp)) as upstream:
            cold = time.perf_counter() - began
            tool = upstream.tools["victim_sleep"]
            failed_at = 0.0

            async def waiting_call() -> None:
                nonlocal failed_at
                try:
                    await upstream.call(tool, {"seconds": 30}, None)
                except GatewayError:
                    failed_at = time.perf_counter()

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiting_call)
                    await anyio.wait_all_tasks_blocked()
                    assert upstream.pid is not None
                    runs = upstream.runs
                    killed_at = time.perf_counter()
                    os.kill(upstream.pid, signal.SIGKILL)
                await until_restarted(upstream, runs)
            ready_at = time.perf_counter()
    return cold, failed_at - killed_at, ready_at - killed_at


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    # Writing 5 resets VmHWM to the current RSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


async def flood_growth(limit: int | None) -> tuple[float, str]:
    """Peak RSS growth (MB) while the upstream sends one FLOOD-byte line, and the error."""
    fields = {"max_message_bytes": limit} if limit else {}
    with tempfile.TemporaryDirectory() as tmp:
        async with supervised("flood", Path(tmp), **fields) as upstream:
            reset_peak_rss()
            before = peak_rss_mb()
            try:
                await upstream.call(upstream.tools["victim_big"], {"size": FLOOD}, None)
                said = "no error"
            except GatewayError as exc:
                said = str(exc)
            return peak_rss_mb() - before, said


async def run(runs: int) -> None:
    print(f"upstream supervision, {runs} kills per case; machine: {machine()}")
    results = {}
    for label, mode in (
        ("stdout ends (baseline)", "crash-on-call"),
        ("grandchild holds stdout", "spawn-child"),
    ):
        samples = [await one_death(mode) for _ in range(runs)]
        results[mode] = samples
        cold = [s[0] for s in samples]
        failed = [s[1] for s in samples]
        ready = [s[2] for s in samples]
        print(f"  {label}:")
        print(
            f"    kill -> in-flight call failed  p50 {pct(failed, 0.5):6.1f} ms"
            f"  p90 {pct(failed, 0.9):6.1f} ms  max {max(failed) * 1000:6.1f} ms"
        )
        print(
            f"    kill -> ready again            p50 {pct(ready, 0.5):6.1f} ms"
            f"  p90 {pct(ready, 0.9):6.1f} ms  (cold start p50 {pct(cold, 0.5):6.1f} ms,"
            f" ratio {pct(ready, 0.5) / pct(cold, 0.5):.2f}x)"
        )
    plain = [s[1] for s in results["crash-on-call"]]
    held = [s[1] for s in results["spawn-child"]]
    print(f"  in-flight failure, held / baseline p50: {pct(held, 0.5) / pct(plain, 0.5):.1f}x")
    worst = max(pct(plain, 0.9), pct(held, 0.9))
    print(f"  goal: in-flight failure p90 < 100 ms -> {'met' if worst < 100 else 'MISSED'}")

    print(f"  flood: one {FLOOD // 2**20} MB line from the upstream")
    for limit in (None, 1024 * 1024):
        growth, said = await flood_growth(limit)
        name = "default 16 MB limit" if limit is None else "1 MB limit"
        print(
            f"    {name:<20} peak RSS +{growth:6.1f} MB ({growth / (FLOOD / 2**20):.2f}x the"
            f" flood); the call got: {said[:90]}"
        )


def main() -> None:
    logging.disable(logging.ERROR)  # the kills and floods are on purpose
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    anyio.run(run, 2 if args.quick else args.runs)


if __name__ == "__main__":
    main()
