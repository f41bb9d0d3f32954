#!/usr/bin/env python
"""Every benchmark in scripts/bench/, one after another, each printing its ratios.

    python scripts/bench/run_all.py [--quick] [--only NAME ...] [--skip NAME ...] [--all-output]

`--quick` runs each briefly (seconds, not minutes; CI runs this after the tests, so a
benchmark that breaks is noticed the day it breaks). Figures are printed, never judged:
the exit status is non-zero only when a benchmark crashes or overruns its time limit.
A benchmark is any script here with a `__main__` block; those needing the npm test
upstreams (tests/upstreams/node) are skipped, saying so, when they are not installed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parents[1] / "tests" / "upstreams" / "node" / "node_modules"
NEEDS_NODE = {"passthrough", "remote_proxy"}
# Lines left out unless --all-output: per-query detail and log lines, not figures.
NOISE = re.compile(
    r"^\s*miss: |^\d{4}-\d\d-\d\dT[\d:.]+ (DEBUG|INFO|WARNING) |^added \d+ packages|^$"
)
QUICK_LIMIT_S = 300.0
FULL_LIMIT_S = 3600.0


def benchmarks() -> list[Path]:
    return sorted(
        path
        for path in HERE.glob("*.py")
        if path != Path(__file__).resolve() and '__name__ == "__main__"' in path.read_text()
    )


def run_one(path: Path, quick: bool, all_output: bool) -> tuple[str, float]:
    """Runs one benchmark, prints its figures; returns its status and seconds."""
    argv = [sys.executable, str(path)] + (["--quick"] if quick else [])
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=QUICK_LIMIT_S if quick else FULL_LIMIT_S,
            cwd=HERE.parents[1],
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        print(output)
        return "timed out", time.monotonic() - started
    took = time.monotonic() - started
    lines = done.stdout.splitlines()
    shown = lines if all_output else [line for line in lines if not NOISE.search(line)]
    for line in shown:
        print(f"  {line}")
    if done.returncode != 0:
        print(f"  exit status {done.returncode}; the end of its stderr:")
        for line in done.stderr.strip().splitlines()[-15:]:
            print(f"    {line}")
        return f"crashed ({done.returncode})", took
    return "ok", took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark briefly")
    parser.add_argument("--only", nargs="+", default=[], help="benchmark names (no .py)")
    parser.add_argument("--skip", nargs="+", default=[], help="benchmark names (no .py)")
    parser.add_argument("--all-output", action="store_true", help="also per-item detail lines")
    args = parser.parse_args()
    statuses: dict[str, tuple[str, float]] = {}
    started = time.monotonic()
    for path in benchmarks():
        name = path.stem
        if (args.only and name not in args.only) or name in args.skip:
            continue
        print(f"== {name}", flush=True)
        if name in NEEDS_NODE and not NODE_MODULES.exists():
            print(f"  skipped: needs `npm ci --prefix {NODE_MODULES.parent}`")
            statuses[name] = ("skipped", 0.0)
            continue
        statuses[name] = run_one(path, args.quick, args.all_output)
        sys.stdout.flush()
    print(f"== summary ({time.monotonic() - started:.0f} s)")
    for name, (status, seconds) in statuses.items():
        print(f"  {name:<16} {status:<14} {seconds:6.1f} s")
    broken = [name for name, (status, _) in statuses.items() if status not in ("ok", "skipped")]
    if broken:
        print(f"broken: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
