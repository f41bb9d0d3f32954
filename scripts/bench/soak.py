#!/usr/bin/env python
"""Soak: a gateway over streamable HTTP under steady mixed calls for M minutes, with its
upstream restarted every minute (`gateway_restart_upstream`). Checks that no call is lost
(every call gets an answer: a result or a clear error), RSS grows < 10 %, and fds and
threads do not grow. Baseline, same run: the figures at the end of the first minute (after
warm-up) against those at the end.

    python scripts/bench/soak.py [--minutes 10] [--clients 4] [--quick]   # by hand
    python scripts/bench/soak.py --minutes 1 --check            # the CI version
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine, pct
from load import SMALL_MODULE, error_kind, proc_counts, start_gateway


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--restart-every", type=float, default=60.0)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:  # too short for the growth figures to mean much: for the code path
        args.minutes, args.restart_every = 0.1, 3.0
    print(
        f"machine: {machine()}; soak {args.minutes:g} min, {args.clients} clients, "
        f"upstream restart every {args.restart_every:g} s"
    )
    seconds: list[float] = []
    errors: Counter[str] = Counter()
    sent = answered = 0
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        gateway, url = start_gateway(Path(tmp), chaos_rate=0.0)
        try:
            async with Client(url) as warm:
                await warm.call_tool("code_analyze", {"code": SMALL_MODULE})
            end = time.monotonic() + args.minutes * 60
            warm_until = time.monotonic() + min(60.0, args.minutes * 30)
            early: tuple[int, int, int] | None = None

            async def caller(index: int) -> None:
                nonlocal sent, answered
                async with Client(url, timeout=60) as client:
                    call = 0
                    while time.monotonic() < end:
                        name, arguments = (
                            ("chaos_chaos", {"text": "soak"})
                            if (index + call) % 2
                            else ("code_analyze", {"code": SMALL_MODULE})
                        )
                        call += 1
                        sent += 1
                        started = time.perf_counter()
                        result = await client.call_tool(name, arguments, raise_on_error=False)
                        answered += 1
                        seconds.append(time.perf_counter() - started)
                        if result.is_error:
                            text = " ".join(getattr(b, "text", "") for b in result.content)
                            errors[error_kind(text)] += 1

            async def restarter() -> None:
                # An admin tool: over HTTP it needs the admin token the gateway wrote.
                token = (Path(tmp) / "data" / "admin-token").read_text().strip()
                transport = StreamableHttpTransport(url, headers={"X-Service-Auth": token})
                async with Client(transport, timeout=120) as admin:
                    while time.monotonic() + args.restart_every < end:
                        await anyio.sleep(args.restart_every)
                        await admin.call_tool("gateway_restart_upstream", {"name": "chaos"})
                        print(f"  restarted the upstream; {answered} calls answered so far")

            async def sampler() -> None:
                nonlocal early
                await anyio.sleep(max(0.0, warm_until - time.monotonic()))
                early = proc_counts(gateway.pid)

            async with anyio.create_task_group() as tg:
                for index in range(args.clients):
                    tg.start_soon(caller, index)
                tg.start_soon(restarter)
                tg.start_soon(sampler)
            await anyio.sleep(2)
            late = proc_counts(gateway.pid)
            assert early is not None
            growth = (late[0] - early[0]) / early[0] * 100
            print(
                f"{answered}/{sent} calls answered; p50 {pct(seconds, 0.5):.1f} ms, "
                f"p99 {pct(seconds, 0.99):.1f} ms; errors {dict(errors) or '{}'}"
            )
            print(
                f"after warm-up (baseline): rss {early[0] / 1024:.0f} MB, fds {early[1]}, "
                f"threads {early[2]}; at the end: rss {late[0] / 1024:.0f} MB "
                f"({growth:+.1f} %, ratio {late[0] / early[0]:.3f}), fds {late[1]}, "
                f"threads {late[2]}"
            )
            if answered != sent:
                failures.append(f"{sent - answered} call(s) lost")
            # The upstream behaves (chaos rate 0): only calls caught by a restart may fail.
            failed = sum(errors.values())
            if failed > 0.05 * max(sent, 1):
                failures.append(f"{failed} of {sent} calls failed (over 5 %): {dict(errors)}")
            if growth >= 10:
                failures.append(f"RSS grew {growth:.1f} %")
            if late[1] > early[1] + 4:
                failures.append(f"fds grew from {early[1]} to {late[1]}")
            if late[2] > early[2] + 4:
                failures.append(f"threads grew from {early[2]} to {late[2]}")
        finally:
            gateway.terminate()
            gateway.wait(timeout=20)
    for failure in failures:
        print("note (a --quick run is too short to judge):" if args.quick else "FAIL:", failure)
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
