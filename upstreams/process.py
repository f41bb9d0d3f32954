"""Spawning and stopping one upstream process (the process seam).

Each upstream runs in its own session (process group), so stopping it also stops whatever
it spawned. Its stderr goes to a per-upstream log file, never to the gateway's stdout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import Process

from gateway.errors import UpstreamUnavailable

log = logging.getLogger(__name__)


@asynccontextmanager
async def upstream_process(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    stderr_log: Path,
    stop_grace: float = 2.0,
) -> AsyncIterator[Process]:
    """Start `argv`; on exit close its stdin, give it `stop_grace` seconds, then terminate
    and finally kill its whole process group."""
    stderr_log.parent.mkdir(parents=True, exist_ok=True)
    with stderr_log.open("ab") as stderr:
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise UpstreamUnavailable(
                f"upstream '{name}' could not start {argv[0]}: {exc.strerror or exc}"
            ) from None
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(name, process, stop_grace)


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
    with contextlib.suppress(Exception):
        await process.aclose()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def last_stderr_line(path: Path, since: int = 0, limit: int = 8192) -> str:
    """The last non-empty line an upstream wrote to its log after byte `since` (where this
    run began: the log is appended to across runs), for one-line error messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(since, size - limit))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
