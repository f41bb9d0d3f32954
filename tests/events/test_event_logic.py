"""Event logic without a broker: envelope bounds, commit positions, the in-process bus with
the admin handlers, and lifecycle events from breakers and supervised upstreams."""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from archon_gateway.core.audit import AuditEvent
from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.errors import (
    InvalidArgument,
    MalformedEvent,
    ToolBusy,
    ToolTimeout,
)
from archon_gateway.events.bus import InProcessBus
from archon_gateway.events.dispatch import Dispatcher, RetryPolicy
from archon_gateway.events.envelope import (
    Envelope,
    dead_letter,
    json_depth,
    parse_envelope,
    uuid4_text,
)
from archon_gateway.events.event_metrics import EventMetrics
from archon_gateway.events.flow import PartitionFlow
from archon_gateway.events.handlers import Handler, HandlerRegistry, gateway_admin
from archon_gateway.events.lifecycle import LifecycleEvents
from archon_gateway.events.topics import Topics
from archon_gateway.events.workers import WorkerPool
from tests.events.kafka_support import request
from tests.support import wait_until

pytestmark = pytest.mark.anyio


def test_an_envelope_over_the_size_limit_is_refused_before_it_is_decoded() -> None:
    _, value = request("codegen.analysis.requested", {"code": "x" * 2000})
    with pytest.raises(MalformedEvent, match="over the 1024-byte limit"):
        parse_envelope(value, max_bytes=1024)


def test_nesting_is_counted_outside_strings_only() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert json_depth(b'{"a": "\\"[[["}') == 1
    with pytest.raises(MalformedEvent, match="deeper than 4 levels"):
        parse_envelope(b'{"payload": [[[[[1]]]]]}', max_bytes=1000, max_depth=4)


def test_an_invalid_envelope_names_the_fields_not_their_values() -> None:
    _, good = request("x.y", {})
    raw = json.dumps({**json.loads(good), "event_id": "", "secret": "hunter2"}).encode()
    with pytest.raises(MalformedEvent) as caught:
        parse_envelope(raw, max_bytes=10_000)
    message = str(caught.value)
    assert "event_id: String should have at least 1 character" in message
    assert "secret: Extra inputs are not permitted" in message
    assert "hunter2" not in message


def test_a_partition_commits_only_up_to_its_first_unfinished_offset() -> None:
    flow = PartitionFlow[int]()
    for offset in (10, 11, 12):
        assert flow.add(offset, None, offset)
    assert flow.finish(11) is None  # 10 still runs: nothing may be committed
    assert flow.finish(10) == 12
    assert len(flow) == 1
    assert flow.finish(12) == 13
    assert len(flow) == 0


def test_records_of_one_key_wait_for_each_other_in_offset_order() -> None:
    flow = PartitionFlow[int]()
    assert flow.add(0, b"a", 0)
    assert not flow.add(1, b"a", 1)
    assert not flow.add(2, b"a", 2)
    assert flow.add(3, b"b", 3)  # another key runs at once
    assert flow.next_of_key(b"a") == 1
    assert flow.next_of_key(b"a") == 2
    assert flow.next_of_key(b"a") is None  # the key is free again
    assert flow.add(4, b"a", 4)


async def test_admin_events_open_and_reset_a_breaker_and_say_so_on_the_lifecycle_topic() -> None:
    topics = Topics("t")
    metrics = EventMetrics(CollectorRegistry())
    breakers = BreakerRegistry(fail_max=3, reset_timeout=60)
    breakers.get_or_create("upstream zen")
    lifecycle = LifecycleEvents(topics.lifecycle, metrics, source="test")
    breakers.add_listener(lifecycle)

    async def no_tools(tool: str, arguments: dict[str, Any]) -> Any:
        raise AssertionError("breaker events call no tool")

    audited: list[AuditEvent] = []

    class Recorder:
        def record(self, event: AuditEvent) -> None:
            audited.append(event)

    admin = gateway_admin(no_tools, breakers, upstreams=False, audit=Recorder())
    registry = HandlerRegistry([admin])
    dispatcher = Dispatcher(
        registry, topics, metrics, source="test", max_event_bytes=10_000, retry=RetryPolicy()
    )
    bus = InProcessBus(dispatcher, metrics, request_topics=[topics.request("gateway-admin")])
    seen: list[tuple[str, dict[str, Any]]] = []
    with anyio.fail_after(10):
        async with bus.running(), lifecycle.running(bus), bus.subscribe() as records:
            for event_type in ("gateway.breaker.open.requested", "gateway.breaker.reset.requested"):
                _, value = request(event_type, {"breaker": "upstream zen"})
                await bus.publish(topics.request("gateway-admin"), b"zen", value)
            _, unknown = request("gateway.breaker.reset.requested", {"breaker": "nope"})
            await bus.publish(topics.request("gateway-admin"), b"zen", unknown)
            async for record in records:
                assert record.value is not None
                seen.append((record.topic, json.loads(record.value)))
                if sum(topic != topics.request("gateway-admin") for topic, _ in seen) == 5:
                    break
    responses = [event for topic, event in seen if topic == topics.response("gateway-admin")]
    assert [r["payload"]["result"]["state"] for r in responses[:2]] == ["open", "closed"]
    assert responses[2]["event_type"] == "gateway.breaker.reset.failed"
    assert responses[2]["payload"]["error"]["kind"] == "NotFound"
    assert "upstream zen" in responses[2]["payload"]["error"]["message"]
    announced = [event["event_type"] for topic, event in seen if topic == topics.lifecycle]
    assert announced == ["gateway.breaker.opened", "gateway.breaker.closed"]
    assert breakers.snapshot()["upstream zen"].state == "closed"
    # Admin actions: audited whatever the outcome, with the event's id and source.
    assert [(e.kind, e.action, e.reason, e.transport) for e in audited] == [
        ("breaker_open", "accept", "upstream zen", "kafka"),
        ("breaker_reset", "accept", "upstream zen", "kafka"),
        ("breaker_reset", "reject", "unknown breaker 'nope'", "kafka"),
    ]
    assert all(e.principal.startswith("event:") and e.request_id for e in audited)


def test_upstream_state_changes_become_lifecycle_events_and_a_full_queue_drops() -> None:
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    lifecycle = LifecycleEvents("t.gateway.lifecycle.v1", metrics, source="test", capacity=2)
    lifecycle.upstream_state_changed("zen", "starting", None)  # not worth an event
    lifecycle.upstream_state_changed("zen", "ready", None)
    lifecycle.upstream_state_changed("zen", "degraded", "exited with code 1")
    lifecycle.upstream_state_changed("zen", "crash_looping", "exited with code 1")
    assert registry.get_sample_value("archon_events_dropped_total") == 1  # it holds 2


def test_event_ids_are_version_4_uuids_in_their_usual_text_form() -> None:
    ids = {uuid4_text() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


async def test_a_worker_pool_runs_quick_jobs_back_to_back_in_order_on_few_workers() -> None:
    done: list[int] = []

    async def quick(job: int) -> None:
        done.append(job)

    async with anyio.create_task_group() as tg:
        pool = WorkerPool[int](tg, 50, quick)
        for job in range(500):
            pool.submit(job)
        await wait_until(lambda: len(done) == 500)
        tg.cancel_scope.cancel()
    assert done == list(range(500))
    assert pool.workers <= 2


async def test_a_worker_pool_grows_for_slow_jobs_up_to_its_limit_and_no_further() -> None:
    release = anyio.Event()
    running = 0
    most = 0
    finished = 0

    async def slow(job: int) -> None:
        nonlocal running, most, finished
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        finished += 1

    async with anyio.create_task_group() as tg:
        pool = WorkerPool[int](tg, 8, slow)
        for job in range(30):
            pool.submit(job)
        await wait_until(lambda: running == 8)
        assert len(pool) == 22  # the rest wait for a free worker
        release.set()
        await wait_until(lambda: finished == 30)
        tg.cancel_scope.cancel()
    assert (most, pool.workers) == (8, 8)


@pytest.mark.parametrize(
    "original",
    [
        b"x" * 3_000_000,  # plain text
        b"\x01" * 3_000_000,  # text that JSON escaping makes six times longer
        b"\xff" * 3_000_000,  # not UTF-8: hex
        "é".encode() * 1_500_000,  # a cut through a two-byte character
    ],
)
def test_a_dead_letter_of_a_huge_record_is_cut_to_stay_producible(original: bytes) -> None:
    record = dead_letter(
        original, reason="r", attempts=0, topic="t", partition=0, offset=0, source="s"
    )
    assert len(record) <= 1_000_000
    kept = json.loads(record)["payload"]["original"]
    assert kept["truncated"] is True
    assert kept["bytes"] == len(original)
    if "text" in kept:
        assert original.startswith(kept["text"].encode())
    else:
        assert original.startswith(bytes.fromhex(kept["hex"]))


def test_a_dead_letter_keeps_a_small_original_whole() -> None:
    record = dead_letter(
        b"\xffsmall", reason="r", attempts=1, topic="t", partition=2, offset=3, source="s"
    )
    assert json.loads(record)["payload"]["original"] == {"hex": "ff736d616c6c"}


async def test_a_busy_tool_is_tried_again_rather_than_answered_with_an_error() -> None:
    topics = Topics("t")
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    attempts = 0

    async def busy_twice(event: Envelope) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ToolBusy("code_analyze", 2)
        return {"ok": True}

    handlers = HandlerRegistry(
        [Handler("busy", "mixin", {"mixin.recommendation.requested": busy_twice})]
    )
    dispatcher = Dispatcher(
        handlers, topics, metrics, source="test", max_event_bytes=10_000, retry=RetryPolicy(3, 0.01)
    )
    bus = InProcessBus(dispatcher, metrics, request_topics=[topics.request("mixin")])
    with anyio.fail_after(10):
        async with bus.running(), bus.subscribe() as records:
            _, value = request("mixin.recommendation.requested", {})
            await bus.publish(topics.request("mixin"), b"k", value)
            async for record in records:
                if record.topic == topics.response("mixin"):
                    assert record.value is not None
                    response = json.loads(record.value)
                    break
    assert response["payload"] == {"result": {"ok": True}}
    assert registry.get_sample_value("archon_event_retries_total", {"handler": "busy"}) == 2


class CountedRows:
    """An EventRows that keeps what it is told (the store's event_metrics takes the same
    calls and writes them per interval)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def processed(self, event_type: str, handler: str, seconds: float) -> None:
        self.calls.append(("processed", event_type, handler))

    def failed(self, event_type: str, handler: str, seconds: float) -> None:
        self.calls.append(("failed", event_type, handler))

    def retried(self, event_type: str, handler: str) -> None:
        self.calls.append(("retried", event_type, handler))

    def dead_lettered(self, event_type: str, handler: str) -> None:
        self.calls.append(("dead_lettered", event_type, handler))


async def test_each_outcome_is_reported_to_the_event_rows_by_type_and_handler() -> None:
    topics = Topics("t")
    metrics = EventMetrics(CollectorRegistry())
    rows = CountedRows()

    async def by_payload(event: Envelope) -> Any:
        if event.payload["do"] == "refuse":
            raise InvalidArgument("no")
        if event.payload["do"] == "break":
            raise ToolTimeout("mixin_recommend", 0.1)
        return {}

    ok = "mixin.recommendation.requested"
    handlers = HandlerRegistry([Handler("h", "mixin", {ok: by_payload})])
    dispatcher = Dispatcher(
        handlers,
        topics,
        metrics,
        source="test",
        max_event_bytes=10_000,
        retry=RetryPolicy(2, 0.01),
        rows=rows,
    )
    bus = InProcessBus(dispatcher, metrics, request_topics=[topics.request("mixin")])
    with anyio.fail_after(10):
        async with bus.running(), bus.subscribe() as records:
            for do in ("work", "refuse", "break"):
                await bus.publish(topics.request("mixin"), b"k", request(ok, {"do": do})[1])
            await bus.publish(topics.request("mixin"), b"k", b"{oops")
            produced = 0
            async for record in records:
                produced += record.topic != topics.request("mixin")
                if produced == 5:  # 3 responses, 2 dead letters
                    break
    assert rows.calls == [
        ("processed", ok, "h"),
        ("failed", ok, "h"),
        ("retried", ok, "h"),
        ("failed", ok, "h"),
        ("dead_lettered", ok, "h"),
        ("dead_lettered", "_malformed_", "_none_"),
    ]
