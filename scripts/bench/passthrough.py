#!/usr/bin/env python
"""Passthrough latency: server-everything (npm, tests/upstreams/node) called directly and
through the gateway's stdio front door, in the same run, with a raw JSON-RPC client.

resources/read of a static document, resources/read through a template, prompts/get with
arguments, and (for reference) a tools/call of `echo`; rounds interleaved (direct, gateway,
direct, ...) so machine drift hits both.

    python scripts/bench/passthrough.py [--calls 500] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import StdioPeer, machine, pct

ROOT = Path(__file__).resolve().parents[2]
EVERYTHING = (
    ROOT / "tests" / "upstreams" / "node" / "node_modules" / ".bin" / "mcp-server-everything"
)
GATEWAY = str(Path(sys.executable).with_name("archon-gateway"))

# (label, method, direct params, gateway params)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "resources/read (static)",
        "resources/read",
        {"uri": "demo://resource/static/document/architecture.md"},
        {"uri": "demo://everything/resource/static/document/architecture.md"},
    ),
    (
        "resources/read (template)",
        "resources/read",
        {"uri": "demo://resource/dynamic/text/3"},
        {"uri": "demo://everything/resource/dynamic/text/3"},
    ),
    (
        "prompts/get (arguments)",
        "prompts/get",
        {"name": "args-prompt", "arguments": {"city": "Paris", "state": "FR"}},
        {"name": "everything_args-prompt", "arguments": {"city": "Paris", "state": "FR"}},
    ),
    (  # for reference: the tool path every proxied call already takes
        "tools/call echo",
        "tools/call",
        {"name": "echo", "arguments": {"message": "ping"}},
        {"name": "everything_echo", "arguments": {"message": "ping"}},
    ),
]


def timed(peer: StdioPeer, method: str, params: dict[str, Any], calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        peer.call(method, params)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500, help="calls per case per side")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 50, 1
    if not EVERYTHING.exists():
        sys.exit(f"{EVERYTHING} is missing: run `npm ci --prefix tests/upstreams/node` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    with tempfile.TemporaryDirectory() as scratch:
        manifests = Path(scratch) / "manifests"
        manifests.mkdir()
        (manifests / "everything.toml").write_text(
            f'name = "everything"\ncommand = "{EVERYTHING}"\n'
        )
        env["ARCHON_DATA_DIR"] = str(Path(scratch) / "data")
        direct = StdioPeer([str(EVERYTHING)], env)
        gateway = StdioPeer(
            [GATEWAY, "serve", "--log-level", "warning", "--manifests", str(manifests)], env
        )
        try:
            print(f"machine: {machine()}; {args.rounds} interleaved rounds x {args.calls} calls")
            per_round = max(1, args.calls // args.rounds)
            for label, method, plain, namespaced in CASES:
                timed(direct, method, plain, 50)  # warm-up (the gateway starts its upstream)
                timed(gateway, method, namespaced, 50)
                base: list[float] = []
                ours: list[float] = []
                for _ in range(args.rounds):
                    base += timed(direct, method, plain, per_round)
                    ours += timed(gateway, method, namespaced, per_round)
                b50, o50 = pct(base, 0.5), pct(ours, 0.5)
                b99, o99 = pct(base, 0.99), pct(ours, 0.99)
                print(
                    f"{label:<27} direct p50 {b50:6.3f} ms p99 {b99:6.3f} | gateway p50 "
                    f"{o50:6.3f} ms p99 {o99:6.3f} | ratio p50 {o50 / b50:4.2f}x "
                    f"(+{o50 - b50:.3f} ms) p99 {o99 / b99:4.2f}x"
                )
        finally:
            direct.close()
            gateway.close()


if __name__ == "__main__":
    main()
