"""One assigned partition between fetch and commit: which offsets are still being handled,
how far the partition may be committed (the first offset not yet finished: everything
below it is done), and the last in-flight record of each key (the next record with that key
waits for it, so ordering per key holds while other keys run concurrently)."""

from __future__ import annotations

from collections import deque

import anyio


class PartitionFlow:
    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # offsets fetched, in fetch (= offset) order
        self._finished: set[int] = set()
        # Keys with a record in flight -> the records waiting behind it, in offset order.
        self._busy_keys: dict[bytes, deque[anyio.Event]] = {}
        self._drained = anyio.Event()
        self._drained.set()
        self.revoked = False

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, offset: int, key: bytes | None) -> anyio.Event | None:
        """Take a fetched record (call in offset order); returns what it must wait for
        before it runs (the previous record with its key), or None to run at once.
        Records without a key are not ordered."""
        if not self._pending:
            self._drained = anyio.Event()
        self._pending.append(offset)
        if key is None:
            return None
        waiting = self._busy_keys.get(key)
        if waiting is None:
            self._busy_keys[key] = deque()
            return None
        turn = anyio.Event()
        waiting.append(turn)
        return turn

    def finish_key(self, key: bytes | None) -> None:
        """The record with `key` that was running is done: the next one's turn."""
        if key is None:
            return
        waiting = self._busy_keys[key]
        if waiting:
            waiting.popleft().set()
        else:
            del self._busy_keys[key]

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
