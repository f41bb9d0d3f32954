"""Where the code tools' CPU-heavy work runs, so it never stalls the event loop and always
ends at the call's time limit.

Small inputs (the usual case, milliseconds) run in this process: parsing and checks in
threads. Inputs of `offload_bytes` or more run in a bounded pool of worker processes
(`workers.WorkerPool`, started with the allow-listed environment, never the gateway's
secrets), and a call cancelled at its limit kills its worker, so the work really stops
and its memory is returned. A worker imports the code tools once and is reused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio.to_thread
from pydantic import BaseModel

from archon_gateway.core.child_env import child_env
from archon_gateway.core.errors import InvalidArgument
from archon_gateway.tools.codegen.models import NodeKind
from archon_gateway.tools.codegen.ruff import Ruff
from archon_gateway.tools.codegen.rules import RuleSet
from archon_gateway.tools.codegen.workers import WorkerPool


def too_deep(tool: str) -> InvalidArgument:
    return InvalidArgument(
        f"{tool}: the code nests or chains expressions more deeply than the parser's limit "
        f"(Python's recursion limit of {sys.getrecursionlimit()} frames); split long "
        "chained expressions or deeply nested blocks"
    )


async def validate_job(
    code: str, rules: RuleSet, filename: str | None, kind: NodeKind | None, ruff: Ruff
) -> BaseModel:
    from archon_gateway.tools.codegen.validate import validate

    report, _ = await validate(code, rules, filename=filename, node_kind=kind, ruff=ruff)
    return report


async def correct_job(
    code: str, rules: RuleSet, filename: str | None, kind: NodeKind | None, ruff: Ruff
) -> BaseModel:
    from archon_gateway.tools.codegen.correct import correct

    return await correct(code, rules, filename=filename, node_kind=kind, ruff=ruff)


def analyze_job(code: str, filename: str | None) -> BaseModel:
    from archon_gateway.tools.codegen.analyze import analyze

    try:
        return analyze(code, filename)
    except RecursionError:
        raise too_deep("code_analyze") from None


def recommend_job(code: str | None, description: str | None, kind: NodeKind | None) -> BaseModel:
    from archon_gateway.tools.codegen.mixins import recommend

    try:
        return recommend(code, description, kind)
    except RecursionError:
        raise too_deep("mixin_recommend") from None


_ASYNC_JOBS: dict[str, Callable[..., Awaitable[BaseModel]]] = {
    "validate": validate_job,
    "correct": correct_job,
}
_SYNC_JOBS: dict[str, Callable[..., BaseModel]] = {
    "analyze": analyze_job,
    "recommend": recommend_job,
}


def run_in_worker(job: str, args: tuple[Any, ...]) -> BaseModel:
    """The entry point in a worker process."""
    if job in _ASYNC_JOBS:
        return anyio.run(partial(_ASYNC_JOBS[job], *args))
    return _SYNC_JOBS[job](*args)


class CodeWork:
    """Runs code-tool jobs in this process or in at most `workers` worker processes."""

    def __init__(self, *, workers: int, offload_bytes: int) -> None:
        self._offload_bytes = offload_bytes
        self._workers = WorkerPool(workers, child_env(os.environ))

    async def aclose(self) -> None:
        await self._workers.aclose()

    async def run(self, size: int, job: str, *args: Any) -> BaseModel:
        if size >= self._offload_bytes:
            return await self._workers.run(run_in_worker, job, args)
        if job in _ASYNC_JOBS:
            try:
                return await _ASYNC_JOBS[job](*args)
            except RecursionError:
                raise too_deep(f"code_{job}") from None
        return await anyio.to_thread.run_sync(_SYNC_JOBS[job], *args, abandon_on_cancel=True)
