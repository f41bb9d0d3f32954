"""One assigned partition between fetch and commit: which offsets are still being handled,
how far the partition may be committed (the first offset not yet finished: everything
below it is done), and the records waiting behind an in-flight record of their key (the
worker that finishes a record takes its key's next one, so ordering per key holds while
other keys run concurrently)."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

Item = TypeVar("Item")


class PartitionFlow(Generic[Item]):
    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # offsets fetched, in fetch (= offset) order
        self._finished: set[int] = set()
        # Keys with a record in flight -> the records waiting behind it, in offset order.
        self._busy_keys: dict[bytes, deque[Item]] = {}
        self._drained = anyio.Event()
        self._drained.set()
        self.revoked = False

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, offset: int, key: bytes | None, item: Item) -> bool:
        """Take a fetched record (call in offset order): True when it may run now, False
        when it waits behind the in-flight record of its key (`next_of_key` hands it out).
        Records without a key are not ordered."""
        if not self._pending:
            self._drained = anyio.Event()
        self._pending.append(offset)
        if key is None:
            return True
        waiting = self._busy_keys.get(key)
        if waiting is None:
            self._busy_keys[key] = deque()
            return True
        waiting.append(item)
        return False

    def next_of_key(self, key: bytes | None) -> Item | None:
        """The in-flight record with `key` is done: its key's next record, to run now (or
        None, and the key is free)."""
        if key is None:
            return None
        waiting = self._busy_keys[key]
        if waiting:
            return waiting.popleft()
        del self._busy_keys[key]
        return None

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
