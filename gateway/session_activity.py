"""When each handshake-era HTTP session was last used, and whether it is busy: the pure
bookkeeping behind idle expiry and least-recently-used eviction (gateway.session_bounds).

A session is *busy* while a POST or DELETE of it is in flight (a tool call, and so any
question an upstream is asking its client mid-call). Busy sessions are never closed.

An open GET stream (the session's channel for server notifications) is a client listening:
  - for idle expiry it holds the session open, as in the SDK: a client that is still
    connected is not expired, however quiet;
  - for eviction at the session cap it does not protect it: among idle sessions those
    with no stream open go first (least recently used first), then listening ones. A
    listener closed this way sees its stream end; its next request gets 404 and it
    re-initializes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass


@dataclass
class _Use:
    last_used: float
    requests: int = 0  # POST/DELETE in flight
    streams: int = 0  # GET streams open


class SessionActivity:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._uses: dict[str, _Use] = {}

    def __len__(self) -> int:
        return len(self._uses)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._uses

    def opened(self, session_id: str) -> None:
        self._uses.setdefault(session_id, _Use(self._clock()))

    def began(self, session_id: str, *, stream: bool) -> None:
        use = self._uses.setdefault(session_id, _Use(self._clock()))
        if stream:
            use.streams += 1
        else:
            use.requests += 1
        use.last_used = self._clock()

    def ended(self, session_id: str, *, stream: bool) -> None:
        use = self._uses.get(session_id)
        if use is None:
            return
        if stream:
            use.streams = max(0, use.streams - 1)
        else:
            use.requests = max(0, use.requests - 1)
        use.last_used = self._clock()

    def forget(self, session_id: str) -> None:
        self._uses.pop(session_id, None)

    def keep_only(self, live: Collection[str]) -> None:
        """Forget sessions that ended by other means (DELETE, a crash, shutdown), and learn
        live ones not seen yet (as used now)."""
        for session_id in [s for s in self._uses if s not in live]:
            del self._uses[session_id]
        for session_id in live:
            self.opened(session_id)

    def expired(self, idle_s: float) -> list[str]:
        """Sessions with nothing in flight and no stream open for `idle_s` seconds."""
        cutoff = self._clock() - idle_s
        return [
            session_id
            for session_id, use in self._uses.items()
            if not use.requests and not use.streams and use.last_used <= cutoff
        ]

    def next_expiry(self, idle_s: float) -> float | None:
        """Clock time at which the next session would expire if nothing happens."""
        quiet = [u.last_used for u in self._uses.values() if not u.requests and not u.streams]
        return min(quiet) + idle_s if quiet else None

    def least_recently_used_idle(self) -> str | None:
        """The session to close at the cap: not busy; without a stream before listening
        ones; least recently used first. None when every session is busy."""
        idle = [(bool(u.streams), u.last_used, s) for s, u in self._uses.items() if not u.requests]
        return min(idle)[2] if idle else None
