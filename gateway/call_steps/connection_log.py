"""Calls to each upstream, per interval, in the store's `connection_metrics` (calls, errors,
latency sum/max and buckets): what an operator asks of a flaky upstream after the fact."""

from __future__ import annotations

import time
from typing import Any

from archon_gateway.gateway.call_context import CallContext, Next
from archon_gateway.store.intervals import ConnectionMetrics


class ConnectionLog:
    def __init__(self, connections: ConnectionMetrics) -> None:
        self.connections = connections

    async def __call__(self, call: CallContext, call_next: Next) -> Any:
        upstream = call.upstream
        if upstream is None:
            return await call_next(call)
        started = time.perf_counter()
        ok = False
        try:
            result = await call_next(call)
            ok = not getattr(result, "is_error", False)
            return result
        finally:
            self.connections.call("upstream", upstream, time.perf_counter() - started, ok=ok)
