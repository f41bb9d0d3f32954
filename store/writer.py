"""The batched writer: rows join a bounded queue without waiting and one task writes them
in batches, so a tool call never waits on the database.

A full queue drops the row and counts it (the caller's hot path stays a deque append). The
writer takes up to `batch_size` rows at a time, waiting at most `linger` seconds for a batch
to fill; a batch the database refuses is retried with backoff while newer rows queue (and,
once the queue is full, are counted as dropped). All of this runs on the event loop's thread:
`submit` is not thread-safe.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio


@dataclass(frozen=True)
class Append:
    """A new row. Rows of one table must all have the same keys (they go in one
    executemany)."""

    table: str
    row: Mapping[str, Any]


@dataclass(frozen=True)
class Update:
    """Set `values` on the rows of `table` whose `key` column equals `key_value`."""

    table: str
    key: str
    key_value: Any
    values: Mapping[str, Any] = field(default_factory=dict)


Op = Append | Update
Flush = Callable[[Sequence[Op]], Awaitable[None]]
Counted = Callable[[str, int], None]


def _noop(_table: str, _count: int) -> None:
    return None


def count_by_table(ops: Sequence[Op]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.table] = counts.get(op.table, 0) + 1
    return counts


class BatchWriter:
    def __init__(
        self,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        linger: float = 0.2,
        on_dropped: Counted = _noop,
        on_flushed: Counted = _noop,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        self.capacity = capacity
        self.batch_size = batch_size
        self.linger = linger
        self._on_dropped = on_dropped
        self._on_flushed = on_flushed
        self._queue: collections.deque[Op] = collections.deque()
        self._in_flight: list[Op] = []
        self._signal = anyio.Event()
        self._closed = False
        self.flushed = 0

    def submit(self, op: Op) -> bool:
        """Queue `op` without waiting; False (and counted as dropped) when the queue is full
        or the writer is closed."""
        if self._closed or len(self._queue) >= self.capacity:
            self._on_dropped(op.table, 1)
            return False
        self._queue.append(op)
        if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
            self._signal.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._in_flight)

    def close(self) -> None:
        """Accept no more rows; `run` writes what is queued and returns."""
        self._closed = True
        self._signal.set()

    def discard(self) -> int:
        """Drop what is still queued or in flight (the shutdown bound ran out); counted."""
        left = [*self._in_flight, *self._queue]
        self._in_flight = []
        self._queue.clear()
        for table, count in count_by_table(left).items():
            self._on_dropped(table, count)
        return len(left)

    async def run(
        self,
        flush: Flush,
        *,
        on_error: Callable[[BaseException], None] = lambda exc: None,
        on_ok: Callable[[], None] = lambda: None,
        retry_initial: float = 0.25,
        retry_max: float = 15.0,
    ) -> None:
        """Write batches until closed and drained. A failed batch is retried, with backoff,
        until it is written (or the caller cancels and discards it)."""
        while await self._fill():
            batch = self._in_flight = [
                self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))
            ]
            delay = retry_initial
            while True:
                try:
                    await flush(batch)
                except Exception as exc:
                    on_error(exc)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, retry_max)
                    continue
                on_ok()
                break
            self._in_flight = []
            self.flushed += len(batch)
            for table, count in count_by_table(batch).items():
                self._on_flushed(table, count)

    async def _fill(self) -> bool:
        """Wait for a batch's worth of rows, or `linger` after the first; False when closed
        and empty."""
        while not self._queue:
            if self._closed:
                return False
            self._signal = anyio.Event()
            await self._signal.wait()
        if len(self._queue) < self.batch_size and not self._closed:
            self._signal = anyio.Event()
            with anyio.move_on_after(self.linger):
                await self._signal.wait()
                while len(self._queue) < self.batch_size and not self._closed:
                    self._signal = anyio.Event()
                    await self._signal.wait()
        return True
