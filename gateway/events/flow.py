"""One assigned partition between fetch and commit: which offsets are still being handled,
how far the partition may be committed (the first offset not yet finished: everything
below it is done), and the last in-flight record of each key (the next record with that key
waits for it, so ordering per key holds while other keys run concurrently)."""

from __future__ import annotations

from collections import deque

import anyio


class PartitionFlow:
    def __init__(self, concurrency: int) -> None:
        self.limiter = anyio.CapacityLimiter(concurrency)
        self._pending: deque[int] = deque()  # offsets fetched, in fetch (= offset) order
        self._finished: set[int] = set()
        self._key_tails: dict[bytes, anyio.Event] = {}
        self._drained = anyio.Event()
        self._drained.set()
        self.revoked = False

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, offset: int) -> None:
        if not self._pending:
            self._drained = anyio.Event()
        self._pending.append(offset)

    def follow(self, key: bytes | None) -> tuple[anyio.Event | None, anyio.Event]:
        """(the event the previous record with `key` sets when done, or None; this record's
        own event). Records without a key are not ordered."""
        mine = anyio.Event()
        if key is None:
            return None, mine
        previous = self._key_tails.get(key)
        self._key_tails[key] = mine
        return previous, mine

    def finish_key(self, key: bytes | None, mine: anyio.Event) -> None:
        mine.set()
        if key is not None and self._key_tails.get(key) is mine:
            del self._key_tails[key]

    def finish(self, offset: int) -> int | None:
        """Mark `offset` handled; returns the new commit position when it advanced."""
        self._finished.add(offset)
        position = None
        while self._pending and self._pending[0] in self._finished:
            done = self._pending.popleft()
            self._finished.discard(done)
            position = done + 1
        if not self._pending:
            self._drained.set()
        return position

    async def drained(self) -> None:
        await self._drained.wait()
