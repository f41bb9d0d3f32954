"""Event counters, latencies and consumer state in the gateway's /metrics registry. Labels
come from configuration (topics, handler names), never from event contents."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# Outcomes of one consumed event: ok (result produced), failed (error response: the request
# was refused), dead_lettered (malformed, unknown, or out of attempts), duplicate (an event
# id seen recently: not handled again).
OUTCOMES = ("ok", "failed", "dead_lettered", "duplicate")


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "archon_events_consumed",
            "Events consumed, by topic, handler and outcome",
            ["topic", "handler", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "archon_event_handle_duration_seconds",
            "Time from taking an event to its response being produced, by handler",
            ["handler"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "archon_event_retries",
            "Handler attempts retried after a failure",
            ["handler"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "archon_events_dead_lettered",
            "Events sent to the dead-letter topic, by source topic and reason kind",
            ["topic", "reason"],
            registry=registry,
        )
        self.produced = Counter(
            "archon_events_produced", "Events produced, by topic", ["topic"], registry=registry
        )
        self.dropped = Counter(
            "archon_events_dropped",
            "Lifecycle events dropped because their queue was full",
            registry=registry,
        )
        self.lag = Gauge(
            "archon_event_consumer_lag",
            "Records not yet consumed, by topic and partition (assigned partitions only)",
            ["topic", "partition"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "archon_events_in_flight", "Events fetched and not yet committed", registry=registry
        )
        self.paused = Gauge(
            "archon_event_partitions_paused",
            "Partitions whose fetching is paused for backpressure",
            registry=registry,
        )
        self.pauses = Counter(
            "archon_event_partition_pauses",
            "Times a partition's fetching was paused for backpressure",
            registry=registry,
        )
        self.offset_resets = Counter(
            "archon_event_offset_resets",
            "Partitions read again from their earliest offset because the committed (or "
            "current) offset was beyond the log, e.g. after a broker lost its data",
            ["topic"],
            registry=registry,
        )
        self.broker_up = Gauge(
            "archon_event_broker_up", "1 while the Kafka broker answers", registry=registry
        )

        # Labelled children, looked up once each (labels() costs more than inc()).
        self._outcomes: dict[tuple[str, str, str], Any] = {}
        self._latencies: dict[str, Any] = {}
        self._retries: dict[str, Any] = {}
        self._produced: dict[str, Any] = {}
        self._dead_letters: dict[tuple[str, str], Any] = {}

    def outcome(self, topic: str, handler: str, outcome: str) -> None:
        key = (topic, handler, outcome)
        child = self._outcomes.get(key)
        if child is None:
            child = self._outcomes[key] = self.consumed.labels(topic, handler, outcome)
        child.inc()

    def handled_in(self, handler: str, seconds: float) -> None:
        child = self._latencies.get(handler)
        if child is None:
            child = self._latencies[handler] = self.latency.labels(handler)
        child.observe(seconds)

    def retried(self, handler: str) -> None:
        child = self._retries.get(handler)
        if child is None:
            child = self._retries[handler] = self.retries.labels(handler)
        child.inc()

    def dead_lettered(self, topic: str, reason: str) -> None:
        key = (topic, reason)
        child = self._dead_letters.get(key)
        if child is None:
            child = self._dead_letters[key] = self.dead_letters.labels(topic, reason)
        child.inc()

    def produced_on(self, topic: str, count: int = 1) -> None:
        child = self._produced.get(topic)
        if child is None:
            child = self._produced[topic] = self.produced.labels(topic)
        child.inc(count)
