#!/usr/bin/env python
"""Throughput of code_validate and code_correct on the test corpus (files/s), against ruff
alone (the same ruff subprocess the tools run: `check` for validate, `check --fix` for
correct), measured in the same run. Sequential, then with several files in flight.

    python scripts/bench/codegen.py [--rounds 5] [--concurrency 4] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from archon_gateway.tools.codegen.correct import correct
from archon_gateway.tools.codegen.ruff import Ruff
from archon_gateway.tools.codegen.rules import RuleSet
from archon_gateway.tools.codegen.validate import validate

ROOT = Path(__file__).resolve().parents[2]

CORPUS = ROOT / "tests" / "codegen" / "corpus"
RULES = RuleSet()
RUFF = Ruff(time_limit=30.0)

Job = Callable[[str, str], Awaitable[object]]


async def ruff_check_only(code: str, name: str) -> object:
    return await RUFF.findings(code, RULES, name)


async def ruff_fix_only(code: str, name: str) -> object:
    return await RUFF.fix(code, RULES, name)


async def full_validate(code: str, name: str) -> object:
    return await validate(code, RULES, filename=name, ruff=RUFF)


async def full_correct(code: str, name: str) -> object:
    return await correct(code, RULES, filename=name, ruff=RUFF)


async def throughput(job: Job, files: list[tuple[str, str]], rounds: int, width: int) -> float:
    work = [item for _ in range(rounds) for item in files]
    limiter = anyio.CapacityLimiter(width)

    async def one(code: str, name: str) -> None:
        async with limiter:
            await job(code, name)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for code, name in work:
            group.start_soon(one, code, name)
    return len(work) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    files = [
        (path.read_text(), path.name)
        for path in sorted(CORPUS.rglob("*.py"))
        if not path.name.endswith(".fixed.py")
    ]
    parseable = [(code, name) for code, name in files if "truncated" not in name]
    await full_correct(*files[0])  # warm-up: libcst import, ruff binary in the page cache

    print(
        f"machine: nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}  corpus={len(files)} files "
        f"({sum(len(c) for c, _ in files)} bytes)  rounds={args.rounds}"
    )
    for width in (1, args.concurrency):
        results = {}
        for label, job, subset in (
            ("ruff check", ruff_check_only, files),
            ("code_validate", full_validate, files),
            ("ruff check --fix", ruff_fix_only, parseable),
            ("code_correct", full_correct, parseable),
        ):
            results[label] = await throughput(job, subset, args.rounds, width)
            print(f"  in flight {width}: {label:18s} {results[label]:7.1f} files/s")
        print(
            f"  in flight {width}: ratio validate/ruff-only "
            f"{results['code_validate'] / results['ruff check']:.2f}x, "
            f"correct/ruff-only {results['code_correct'] / results['ruff check --fix']:.2f}x"
        )


if __name__ == "__main__":
    anyio.run(main)
