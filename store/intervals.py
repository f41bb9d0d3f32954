"""Per-interval metrics rows: counts gathered in memory and appended once per interval
(`connection_metrics`, `event_metrics`), so a busy path adds a dict update, not a row.

`EventMetrics` is the interface event handlers report through (the webhook handler today,
the Kafka handlers later); `ConnectionMetrics` the one connections report through
(upstreams, HTTP backends, the database). Keys are bounded: past `max_keys` distinct keys in
one interval, new ones are counted under "_other_".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from typing import Any

import anyio

from archon_gateway.store.service import Store

OTHER = "_other_"
# Latency buckets of connection_metrics (seconds): <=10 ms, <=100 ms, <=1 s, above.
_BUCKETS = ((0.01, "le_10ms"), (0.1, "le_100ms"), (1.0, "le_1s"))


@dataclass
class _ConnectionCounts:
    connects: int = 0
    failures: int = 0
    calls: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    le_10ms: int = 0
    le_100ms: int = 0
    le_1s: int = 0
    gt_1s: int = 0
    breaker_transitions: int = 0


@dataclass
class _EventCounts:
    processed: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0


@dataclass
class _Intervals:
    """Counts per key for the current interval; `flush` appends one row per key."""

    store: Store
    table: str
    key_columns: tuple[str, str]
    new: Callable[[], Any]
    interval: float = 60.0
    max_keys: int = 1000
    clock: Callable[[], float] = time.time
    _counts: dict[tuple[str, str], Any] = field(default_factory=dict)
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._started = self.clock()

    def counts(self, first: str, second: str) -> Any:
        key = (first[:200], second[:200])
        found = self._counts.get(key)
        if found is None:
            if len(self._counts) >= self.max_keys:
                key = (OTHER, OTHER)
                found = self._counts.get(key)
            if found is None:
                found = self._counts[key] = self.new()
        return found

    def flush(self) -> int:
        now = self.clock()
        counts, self._counts = self._counts, {}
        for (first, second), item in counts.items():
            row = {f.name: getattr(item, f.name) for f in fields(item)}
            row |= {
                "at": self._started,
                "interval_s": round(now - self._started, 3),
                self.key_columns[0]: first,
                self.key_columns[1]: second,
            }
            self.store.append(self.table, row)
        self._started = now
        return len(counts)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._every_interval)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                self.flush()

    async def _every_interval(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            self.flush()


class ConnectionMetrics(_Intervals):
    def __init__(self, store: Store, *, interval: float = 60.0, **kwargs: Any) -> None:
        super().__init__(
            store, "connection_metrics", ("kind", "target"), _ConnectionCounts, interval, **kwargs
        )

    def connected(self, kind: str, target: str, *, ok: bool = True) -> None:
        counts = self.counts(kind, target)
        if ok:
            counts.connects += 1
        else:
            counts.failures += 1

    def call(self, kind: str, target: str, seconds: float, *, ok: bool) -> None:
        counts = self.counts(kind, target)
        counts.calls += 1
        counts.errors += 0 if ok else 1
        counts.latency_sum += seconds
        counts.latency_max = max(counts.latency_max, seconds)
        for limit, column in _BUCKETS:
            if seconds <= limit:
                setattr(counts, column, getattr(counts, column) + 1)
                return
        counts.gt_1s += 1

    def breaker_transition(self, kind: str, target: str) -> None:
        self.counts(kind, target).breaker_transitions += 1


class EventMetrics(_Intervals):
    """What an event handler reports: each event processed (or failed, retried,
    dead-lettered) with its latency."""

    def __init__(self, store: Store, *, interval: float = 60.0, **kwargs: Any) -> None:
        super().__init__(
            store, "event_metrics", ("event_type", "handler"), _EventCounts, interval, **kwargs
        )

    def processed(self, event_type: str, handler: str, seconds: float) -> None:
        self._timed(event_type, handler, seconds).processed += 1

    def failed(self, event_type: str, handler: str, seconds: float) -> None:
        self._timed(event_type, handler, seconds).failed += 1

    def retried(self, event_type: str, handler: str) -> None:
        self.counts(event_type, handler).retried += 1

    def dead_lettered(self, event_type: str, handler: str) -> None:
        self.counts(event_type, handler).dead_lettered += 1

    def _timed(self, event_type: str, handler: str, seconds: float) -> Any:
        counts = self.counts(event_type, handler)
        counts.latency_sum += seconds
        counts.latency_max = max(counts.latency_max, seconds)
        return counts
