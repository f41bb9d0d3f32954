"""Prometheus instruments, one registry per gateway instance (tests build many)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from archon_gateway.core.version import __version__

# Tool calls span sub-millisecond native tools to minute-long upstream work.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# Label for calls to names that are not in the catalog, so user input cannot mint labels.
UNKNOWN_TOOL = "_unknown_"


class GatewayMetrics:
    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.registry = CollectorRegistry()
        self.tool_calls = Counter(
            "archon_tool_calls",
            "Tool calls handled, by tool and outcome",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_latency = Histogram(
            "archon_tool_call_duration_seconds",
            "Tool call latency, measured from the call's start",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lane_calls = Counter(
            "archon_lane_calls",
            "Tool calls served on the lane (gateway.lane), by transport",
            ["transport"],
            registry=self.registry,
        )
        self.sessions = Counter(
            "archon_sessions",
            "MCP sessions initialized, by transport",
            ["transport"],
            registry=self.registry,
        )
        self.active_sessions = Gauge(
            "archon_active_sessions",
            "MCP sessions open now, by transport",
            ["transport"],
            registry=self.registry,
        )
        self.auth_rejections = Counter(
            "archon_auth_rejections",
            "Requests refused by service auth, by transport and reason",
            ["transport", "reason"],
            registry=self.registry,
        )
        self.upstream_ping = Histogram(
            "archon_upstream_ping_seconds",
            "MCP ping round trips to upstreams",
            ["upstream"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "archon_config_reloads",
            "Configuration reloads, by trigger (watch, signal, tool) and outcome "
            "(applied, unchanged, invalid)",
            ["trigger", "outcome"],
            registry=self.registry,
        )
        build_info = Gauge(
            "archon_build_info", "Gateway version", ["version"], registry=self.registry
        )
        build_info.labels(version=__version__).set(1)
        uptime = Gauge("archon_uptime_seconds", "Seconds since start", registry=self.registry)
        uptime.set_function(self.uptime)

    def watch(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add metrics computed at scrape time (breaker and component states)."""
        self.registry.register(_Collector(collect))

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def tool_call_totals(self) -> dict[str, int]:
        """Calls so far by outcome, summed over tools."""
        return self._totals_by(self.tool_calls, "outcome")

    def session_totals(self) -> dict[str, int]:
        return self._totals_by(self.sessions, "transport")

    @staticmethod
    def _totals_by(counter: Counter, label: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for metric in counter.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    key = sample.labels[label]
                    totals[key] = totals.get(key, 0) + int(sample.value)
        return totals


class _Collector(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


def state_gauge(
    name: str, documentation: str, label: str, states: Iterable[str], current: dict[str, str]
) -> GaugeMetricFamily:
    """An enum-style gauge: one series per (item, state), 1 for the item's current state."""
    family = GaugeMetricFamily(name, documentation, labels=[label, "state"])
    choices = list(states)
    for item, now in current.items():
        for state in choices:
            family.add_metric([item, state], 1.0 if state == now else 0.0)
    return family
