"""Spawning and stopping one upstream process (the process seam).

Each upstream runs in its own session (process group), so stopping it also stops whatever
it spawned. Its stderr is read through a pipe into its StderrLog (never the gateway's
stdout).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
from anyio.abc import Process

from archon_gateway.core.background import running_beside
from archon_gateway.core.errors import UpstreamUnavailable
from archon_gateway.upstreams.stderr_log import StderrLog

log = logging.getLogger(__name__)

# How long stopping waits for the last stderr bytes after the process group is gone.
_STDERR_DRAIN = 1.0


@asynccontextmanager
async def upstream_process(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    stderr_log: StderrLog,
    stop_grace: float = 2.0,
) -> AsyncIterator[Process]:
    """Start `argv` with its stderr pumped into `stderr_log`; on exit close its stdin, give
    it `stop_grace` seconds, then terminate and finally kill its whole process group."""
    try:
        process = await anyio.open_process(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise UpstreamUnavailable(
            f"upstream '{name}' could not start {argv[0]}: {exc.strerror or exc}"
        ) from exc
    assert process.stderr is not None
    async with running_beside(partial(stderr_log.pump, process.stderr)):
        try:
            yield process
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(name, process, stop_grace)
                # The group is gone, so the pipe ends: keep what it said last.
                with anyio.move_on_after(_STDERR_DRAIN):
                    await stderr_log.closed.wait()
                with contextlib.suppress(Exception):
                    await process.aclose()


async def _stop(name: str, process: Process, grace: float) -> None:
    if process.stdin is not None:
        with contextlib.suppress(Exception):
            await process.stdin.aclose()
    with anyio.move_on_after(grace):
        await process.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            break
        log.info("upstream %s did not exit after closing stdin; sending %s", name, sig.name)
        _signal_group(process.pid, sig)
        with anyio.move_on_after(grace):
            await process.wait()
    # The leader is gone; anything it left in its group goes with it.
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def describe_exit(returncode: int) -> str:
    """'exited with code 3' or 'was killed by SIGKILL', for one-line messages."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"
