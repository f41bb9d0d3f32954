"""Up to `limit` worker tasks taking jobs in submission order, started only when work waits
and no worker is free. Quick jobs (no await that suspends) are run back to back by one
worker instead of waking a task per job; slow ones bring in more workers, one per job that
finds no free worker, up to the limit."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

Job = TypeVar("Job")

# Jobs run back to back before a worker lets the other tasks (fetching, producing) in.
_BATCH = 64


class WorkerPool(Generic[Job]):
    def __init__(self, tg: TaskGroup, limit: int, run: Callable[[Job], Awaitable[None]]) -> None:
        self._tg = tg
        self._limit = limit
        self._run = run
        self._ready: deque[Job] = deque()
        self._idle: deque[anyio.Event] = deque()  # one per worker waiting for work
        self._workers = 0
        self._free = 0  # workers not running a job (starting, idle or just woken)

    @property
    def workers(self) -> int:
        return self._workers

    def __len__(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._ready)

    def submit(self, job: Job) -> None:
        self._ready.append(job)
        if self._idle:
            self._idle.popleft().set()
        else:
            self._grow()

    def _grow(self) -> None:
        if self._free == 0 and self._workers < self._limit and self._ready:
            self._workers += 1
            self._free += 1
            self._tg.start_soon(self._worker)

    async def _worker(self) -> None:
        in_a_row = 0
        while True:
            if not self._ready:
                in_a_row = 0
                woken = anyio.Event()
                self._idle.append(woken)
                await woken.wait()
                continue
            if in_a_row >= _BATCH:
                in_a_row = 0
                await anyio.lowlevel.checkpoint()
                continue
            job = self._ready.popleft()
            self._free -= 1
            self._grow()  # more waits and no one else is free: bring another worker
            try:
                await self._run(job)
            finally:
                self._free += 1
            in_a_row += 1
