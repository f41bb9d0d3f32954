"""Spawning and stopping one upstream process (the process seam).

Each upstream runs in its own session (process group), so stopping it also stops whatever
it spawned. Its stderr is read through a pipe into a per-upstream rotated log file (never
the gateway's stdout); the last lines it wrote stay in memory for error messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO

import anyio
from anyio.abc import ByteReceiveStream, Process

from gateway.errors import UpstreamUnavailable
from upstreams.background import running_beside

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
_READ_SIZE = 64 * 1024
# Bytes kept of any one stderr line for error messages (the start says what is wrong).
_LINE_KEEP = 512
_LINES_KEPT = 5
# How long stopping waits for the last stderr bytes after the process group is gone.
_STDERR_DRAIN = 1.0


class StderrLog:
    """An upstream's stderr: appended to `<dir>/<name>.log`, rotated at `max_bytes` with
    `backups` older files (`.log.1` newest), and its last lines remembered. Memory is
    bounded whatever the upstream writes, even one endless line."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        max_bytes: int = LOG_MAX_BYTES,
        backups: int = LOG_BACKUPS,
    ) -> None:
        self.path = directory / f"{name}.log"
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        self.closed = anyio.Event()
        self._lines: deque[bytes] = deque(maxlen=_LINES_KEPT)
        self._partial = bytearray()
        self._file: BinaryIO | None = None
        self._size = 0
        self._write_failed = False

    def last_line(self) -> str:
        """The last non-empty line written so far (an unfinished one counts), shortened."""
        candidates = [bytes(self._partial), *reversed(self._lines)]
        for line in candidates:
            text = line.decode(errors="replace").strip()
            if text:
                return text[:300]
        return ""

    async def pump(self, stream: ByteReceiveStream) -> None:
        """Copy `stream` to the log until it ends. Never stops reading early: an upstream
        blocked on a full stderr pipe would hang its calls."""
        try:
            while True:
                try:
                    chunk = await stream.receive(_READ_SIZE)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                self._remember(chunk)
                self._write(chunk)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
            self.closed.set()

    def _remember(self, chunk: bytes) -> None:
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            self._partial += piece[: _LINE_KEEP - len(self._partial)]
            if self._partial.strip():
                self._lines.append(bytes(self._partial))
            self._partial.clear()
        self._partial += rest[: _LINE_KEEP - len(self._partial)]

    def _write(self, chunk: bytes) -> None:
        try:
            while chunk:
                handle = self._open()
                if self._size >= self.max_bytes:
                    self._rotate()
                    continue
                room = self.max_bytes - self._size
                handle.write(chunk[:room])
                self._size += min(room, len(chunk))
                chunk = chunk[room:]
            if self._file is not None:
                self._file.flush()
        except OSError as exc:
            # Keep draining the pipe without a log rather than wedge the upstream.
            if not self._write_failed:
                log.error("cannot write upstream log %s: %s", self.path, exc.strerror or exc)
            self._write_failed = True

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))


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
        ) from None
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
