"""An upstream's stderr: copied into a rotated per-upstream log file, last lines kept."""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import BinaryIO

import anyio
from anyio.abc import ByteReceiveStream

from archon_gateway.core.line_framing import READ_SIZE

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
# Bytes read but not yet written (queued, or being written by the writer thread). Past
# this the newest bytes are dropped and counted: a stalled disk must not stop the reading,
# or the upstream would block on a full stderr pipe and hang its calls.
PENDING_MAX_BYTES = 512 * 1024
# How long the reader waits for a writer that is merely behind (a burst faster than the
# writer thread gets scheduled) before it treats the disk as stalled and starts dropping.
CATCH_UP_SECONDS = 0.2
# Bytes kept of any one stderr line for error messages (the start says what is wrong).
_LINE_KEEP = 512
_LINES_KEPT = 5


class StderrLog:
    """An upstream's stderr: appended to `<dir>/<name>.log`, rotated at `max_bytes` with
    `backups` older files (`.log.1` newest), and its last lines remembered. Memory is
    bounded whatever the upstream writes, even one endless line.

    The event loop only reads the pipe and remembers the last lines; files are written,
    flushed and rotated in a worker thread, a batch of whatever was read meanwhile at a
    time. When the writer falls `pending_max` bytes behind, the reader waits up to
    CATCH_UP_SECONDS for it; if it is still behind (a stalled disk), newer bytes are dropped,
    counted in `dropped_bytes`, and a line saying so marks the gap in the file."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        max_bytes: int = LOG_MAX_BYTES,
        backups: int = LOG_BACKUPS,
        pending_max: int = PENDING_MAX_BYTES,
    ) -> None:
        self.path = directory / f"{name}.log"
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        self.pending_max = max(1, pending_max)
        self.closed = anyio.Event()
        self.dropped_bytes = 0
        self._lines: deque[bytes] = deque(maxlen=_LINES_KEPT)
        self._partial = bytearray()
        # Read on the event loop, written by the writer thread.
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0  # queued plus the batch being written
        self._unmarked_drops = 0  # dropped since the last gap marker was queued
        self._more = anyio.Event()
        self._written = anyio.Event()  # set (and replaced) after each batch is written
        self._writer_stalled = False  # a catch-up wait timed out; no batch finished since
        self._reading = True
        # Touched only inside the writer thread (one batch at a time).
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
        blocked on a full stderr pipe would hang its calls. `closed` is set once all that
        was read is written and the file is closed."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write_batches)
                try:
                    await self._read(stream)
                finally:
                    self._mark_drops()  # drops at the very end get their marker too
                    self._reading = False
                    self._more.set()
        finally:
            # Cancelled or not: what was read reaches the file, and the file is closed.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._finish, self._take())
            self.closed.set()

    async def _read(self, stream: ByteReceiveStream) -> None:
        while True:
            try:
                chunk = await stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            self._remember(chunk)
            if self._over_bound(len(chunk)) and not self._writer_stalled:
                with anyio.move_on_after(CATCH_UP_SECONDS) as waiting:
                    while self._over_bound(len(chunk)):
                        await self._written.wait()
                self._writer_stalled = waiting.cancelled_caught
            self._queue(chunk)

    def _over_bound(self, size: int) -> bool:
        return bool(self._pending_bytes) and self._pending_bytes + size > self.pending_max

    def _remember(self, chunk: bytes) -> None:
        if b"\n" not in chunk:  # one long line going on: no copy of the chunk
            self._partial += chunk[: max(0, _LINE_KEEP - len(self._partial))]
            return
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            self._partial += piece[: _LINE_KEEP - len(self._partial)]
            if self._partial.strip():
                self._lines.append(bytes(self._partial))
            self._partial.clear()
        self._partial += rest[: _LINE_KEEP - len(self._partial)]

    def _queue(self, chunk: bytes) -> None:
        if self._over_bound(len(chunk)):
            if not self._unmarked_drops:
                log.warning("upstream log %s cannot keep up; dropping stderr", self.path)
            self.dropped_bytes += len(chunk)
            self._unmarked_drops += len(chunk)
            return
        self._mark_drops()
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        self._more.set()

    def _mark_drops(self) -> None:
        """Say in the log where (and how many) bytes were dropped."""
        if self._unmarked_drops:
            marker = f"\n[archon-gateway: {self._unmarked_drops} bytes of stderr dropped here]\n"
            self._pending.append(marker.encode())
            self._pending_bytes += len(marker)
            self._unmarked_drops = 0

    def _take(self) -> list[bytes]:
        """Everything queued, as one batch (its bytes still count as pending)."""
        batch = list(self._pending)
        self._pending.clear()
        return batch

    async def _write_batches(self) -> None:
        while self._reading or self._pending:
            if not self._pending:
                await self._more.wait()
                self._more = anyio.Event()
                continue
            batch = self._take()
            try:
                await anyio.to_thread.run_sync(self._write, batch)
            finally:
                self._pending_bytes -= sum(len(chunk) for chunk in batch)
                self._writer_stalled = False
                self._written.set()
                self._written = anyio.Event()

    # Below here runs in the writer thread, never on the event loop.

    def _write(self, batch: list[bytes]) -> None:
        try:
            for chunk in batch:
                self._write_chunk(chunk)
            if self._file is not None:
                self._file.flush()
        except OSError as exc:
            # Keep draining the pipe without a log rather than wedge the upstream.
            if not self._write_failed:
                log.error("cannot write upstream log %s: %s", self.path, exc.strerror or exc)
            self._write_failed = True

    def _finish(self, batch: list[bytes]) -> None:
        try:
            self._write(batch)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write_chunk(self, chunk: bytes) -> None:
        rest = memoryview(chunk)  # slices of a view copy nothing
        while rest:
            handle = self._open()
            if self._size >= self.max_bytes:
                self._rotate()
                continue
            room = self.max_bytes - self._size
            handle.write(rest[:room])
            self._size += min(room, len(rest))
            rest = rest[room:]

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
