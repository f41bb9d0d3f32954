"""How many HTTP connections may be open, and which one gives way when they are all taken.

A connection is *waiting* while it has no request being served: from the moment it opens
until its request headers are complete, and again between keep-alive requests. Waiting
connections cost a file descriptor and a little memory but no work, and a flood of them
(or of slow header senders) must not lock real clients out. So at the cap a new connection
takes the slot of the connection that has waited longest, which is closed; only when every
open connection has a request in flight is the new one refused. Connections that did send
their headers therefore keep their capacity, however many idle ones arrive.

Pure bookkeeping: the protocol (core.sdk_compat.slow_client_protocol) reports the
transitions and closes what it is told to.
"""

from __future__ import annotations

from typing import Protocol


class Closable(Protocol):
    def cut(self) -> None:
        """Close the connection now (it has sent no request that is being served)."""


class ConnectionSlots:
    """At most `max_connections` open; `admit` makes room by closing the longest-waiting."""

    def __init__(self, max_connections: int, refusal: str = "") -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        # What a refused connection is told (one line naming the limit).
        self.refusal = refusal or (
            f"too many open connections: all {max_connections} are serving requests; retry shortly"
        )
        self._open: set[Closable] = set()
        # Insertion-ordered: the first key has been waiting longest.
        self._waiting: dict[Closable, None] = {}
        self.evicted = 0  # waiting connections closed to make room
        self.refused = 0  # connections refused because every slot was serving a request

    def __len__(self) -> int:
        return len(self._open)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def admit(self, conn: Closable) -> bool:
        """A connection opened: True if it may stay (waiting for its headers), False if
        every slot is serving a request (the caller answers 503 and closes it)."""
        if len(self._open) >= self.max_connections:
            if not self._waiting:
                self.refused += 1
                return False
            oldest = next(iter(self._waiting))
            self.closed(oldest)  # its slot is free from now; connection_lost finds it gone
            self.evicted += 1
            oldest.cut()
        self._open.add(conn)
        self._waiting[conn] = None
        return True

    def waiting(self, conn: Closable) -> None:
        """It has no request in flight (a response completed on a keep-alive connection)."""
        if conn in self._open:
            self._waiting.pop(conn, None)
            self._waiting[conn] = None  # to the back: it has waited least

    def busy(self, conn: Closable) -> None:
        """Its request headers are complete: it keeps its slot until the response is done."""
        self._waiting.pop(conn, None)

    def closed(self, conn: Closable) -> None:
        self._open.discard(conn)
        self._waiting.pop(conn, None)
