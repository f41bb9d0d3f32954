"""An upstream's stderr: copied into a rotated per-upstream log file, last lines kept."""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import BinaryIO

import anyio
from anyio.abc import ByteReceiveStream

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
_READ_SIZE = 64 * 1024
# Bytes kept of any one stderr line for error messages (the start says what is wrong).
_LINE_KEEP = 512
_LINES_KEPT = 5


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
