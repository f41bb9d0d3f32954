#!/usr/bin/env python
"""How fast a call in flight fails when its upstream dies: from SIGKILL of the upstream to
the waiting call's UpstreamUnavailable, through the gateway's own upstream session.

Two cases, each with a call waiting on the upstream's `sleep` tool: a plain process (its
stdout ends with it: the baseline) and one whose grandchild keeps stdout open (only the
exit is seen; the goal is < 100 ms). Prints p50/p90/max and the ratio.

    python scripts/bench/upstream_death.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import anyio
from benchlib import machine, pct

from gateway.errors import UpstreamUnavailable
from upstreams.manifest import Manifest
from upstreams.session import open_session

FAULTY = Path(__file__).resolve().parents[2] / "tests" / "upstreams" / "faulty_server.py"


async def one_death(mode: str, log_dir: Path) -> float:
    manifest = Manifest(
        name="victim",
        command=sys.executable,
        args=[str(FAULTY), mode],
        env={"FAULTY_CHILD_PID_FILE": str(log_dir / "child.pid")},
    )
    failed_at = 0.0
    async with open_session(
        manifest, sys.executable, gateway_env=os.environ, log_dir=log_dir
    ) as session:

        async def waiting_call() -> None:
            nonlocal failed_at
            try:
                await session.call_tool("sleep", {"seconds": 30})
            except UpstreamUnavailable:
                failed_at = time.perf_counter()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiting_call)
                await anyio.wait_all_tasks_blocked()
                killed_at = time.perf_counter()
                os.kill(session.pid, signal.SIGKILL)
    return failed_at - killed_at


async def measure(mode: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(await one_death(mode, Path(tmp)))
    return times


async def run(runs: int) -> None:
    plain = await measure("crash-on-call", runs)
    held = await measure("spawn-child", runs)
    print(f"in-flight call failure after SIGKILL of its upstream, {runs} runs each")
    for label, times in (("stdout ends (baseline)", plain), ("grandchild holds stdout", held)):
        print(
            f"  {label:<24} p50 {pct(times, 0.5):6.1f} ms  p90 {pct(times, 0.9):6.1f} ms"
            f"  max {max(times) * 1000:6.1f} ms"
        )
    print(f"  ratio (p50 held / p50 baseline): {pct(held, 0.5) / pct(plain, 0.5):.1f}x")
    print(f"  goal: held p90 < 100 ms -> {'met' if pct(held, 0.9) < 100 else 'MISSED'}")
    print(f"  machine: {machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    anyio.run(run, parser.parse_args().runs)


if __name__ == "__main__":
    main()
