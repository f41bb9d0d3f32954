"""The assembled gateway with Kafka: every registered handler answers its request event, the
native tool runs through the gateway's middleware (it shows in the tool-call metrics), and
events_publish, /health and /metrics show the event side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client
from prometheus_client.parser import text_string_to_metric_families

from archon_gateway.events.topics import Topics
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings
from tests.events.conftest import Broker
from tests.events.kafka_support import collecting, produce, request, unique
from tests.support import tool_call_samples, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

NODE = """
class NodeThingEffect:
    async def execute_effect(self, contract):
        return contract
"""


RETRYING = "retries flaky network calls to a remote HTTP API"


def kafka_settings(tmp_path: Path, broker: Broker, prefix: str) -> Settings:
    return Settings(
        transport="stdio",
        data_dir=tmp_path,
        enable_external_gateway=False,
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic_prefix=prefix,
        kafka_group_id=unique("g"),
        kafka_session_timeout=1.5,
        kafka_topic_partitions=2,
    )


async def get(server: GatewayServer, path: str) -> httpx.Response:
    app = build_http_app(server, "/mcp")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as web:
        return await web.get(f"http://gateway{path}")


def consumed(metrics_text: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["handler"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "archon_events_consumed_total"
    }


async def test_each_handler_answers_its_request_through_the_gateway_middleware(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    prefix = unique("gw")
    topics = Topics(prefix)
    server = build_gateway(kafka_settings(tmp_path, kafka_broker, prefix))
    pattern = {"id": "p1", "name": "retry loop", "text": "for attempt in range(3): try again"}
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "validate": ("codegen-validation", "codegen.validation.requested", {"code": NODE}),
        "correct": (
            "codegen-validation",
            "codegen.validation.requested",
            {"code": "def f():\n    try:\n        pass\n    except:\n        pass\n", "fix": True},
        ),
        "analyze": ("analysis", "codegen.analysis.requested", {"code": NODE}),
        "index": ("pattern", "pattern.index.requested", {"patterns": [pattern]}),
        "reindex": ("pattern", "pattern.reindex.requested", {"ids": ["p1", "nope"]}),
        "search": ("pattern", "pattern.search.requested", {"query": "retry", "top_k": 1}),
        "mixin": (
            "mixin",
            "mixin.recommendation.requested",
            {"description": "retries flaky network calls to a remote HTTP API"},
        ),
    }
    ids: dict[str, str] = {}
    response_topics = sorted({topics.response(service) for service, _, _ in requests.values()})
    with anyio.fail_after(90):
        async with (
            Client(server) as client,
            collecting(kafka_broker.bootstrap, [*response_topics, topics.lifecycle]) as out,
        ):
            await wait_until(lambda: events_consuming(server), within=30)
            for name, (service, event_type, payload) in requests.items():
                event_id, value = request(event_type, payload)
                ids[name] = event_id
                # One key per service: the pattern requests run in order (index first).
                await produce(kafka_broker.bootstrap, topics.request(service), [(b"k", value)])
            published = await client.call_tool(
                "events_publish",
                {"event_type": "mixin.recommendation.requested", "payload": {"code": NODE}},
            )
            assert published.structured_content is not None
            ids["published"] = published.structured_content["correlation_id"]
            await out.wait(lambda c: len(c.records) >= len(ids), within=60)
            metrics_text = (await get(server, "/metrics")).text
            health = (await get(server, "/health")).json()
    answers = {event["correlation_id"]: event for _, event in out.records}
    results = {name: answers[event_id]["payload"]["result"] for name, event_id in ids.items()}
    assert results["validate"]["node_kind"] == "effect"
    assert "except Exception:" in results["correct"]["code"]
    assert results["analyze"]["node_class"] == "NodeThingEffect"
    assert results["index"]["indexed"] == ["p1"]
    assert results["reindex"] == {"reindexed": ["p1"], "failed": [], "missing": ["nope"]}
    assert [hit["id"] for hit in results["search"]["results"]] == ["p1"]
    assert results["mixin"]["recommendations"]
    assert results["published"]["node_kind"] == "effect"
    assert answers[ids["validate"]]["event_type"] == "codegen.validation.completed"
    # Through the middleware: the native tools were counted as tool calls.
    calls = tool_call_samples(metrics_text)
    for tool in ("code_validate", "code_correct", "code_analyze", "pattern_search"):
        assert calls[tool, "ok"] >= 1, tool
    assert consumed(metrics_text)["codegen_validation", "ok"] == 2
    assert consumed(metrics_text)["pattern", "ok"] == 3
    assert health["components"]["events"]["status"] == "ok"


async def test_a_gateway_starts_with_kafka_down_and_says_so(
    tmp_path: Path, refused_port: int
) -> None:
    broker = Broker(refused_port)  # never started
    server = build_gateway(kafka_settings(tmp_path, broker, unique("down")))
    with anyio.fail_after(30):
        async with Client(server) as client:
            assert (await client.call_tool("gateway_info", {})).structured_content is not None
            await wait_until(
                lambda: _says(events_component(server), "cannot reach Kafka"), within=20
            )
            ready = await get(server, "/health/ready")
            failed = await client.call_tool(
                "events_publish",
                {"event_type": "mixin.recommendation.requested", "payload": {}},
                raise_on_error=False,
            )
    body = ready.json()
    assert ready.status_code == 200  # MCP keeps working: the events component is not critical
    assert body["components"]["events"]["status"] == "down"
    assert failed.is_error
    assert "Kafka is not connected" in failed.content[0].text  # type: ignore[union-attr]


async def events_component(server: GatewayServer) -> dict[str, str]:
    component: dict[str, str] = (await get(server, "/health")).json()["components"]["events"]
    return component


async def events_consuming(server: GatewayServer) -> bool:
    component = await events_component(server)
    return component["status"] == "ok" and "assigned" in component.get("detail", "")


async def _says(component: Any, text: str) -> bool:
    return text in (await component).get("detail", "")


async def test_a_burst_of_events_waits_for_a_busy_tools_slots_instead_of_being_refused(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    # code_analyze admits 2 calls at once; 16 events arrive together.
    prefix = unique("burst")
    topics = Topics(prefix)
    settings = kafka_settings(tmp_path, kafka_broker, prefix).model_copy(
        update={"tool_concurrency": {"code_analyze": 2}}
    )
    server = build_gateway(settings)
    sent = [request("codegen.analysis.requested", {"code": NODE}) for _ in range(16)]
    with anyio.fail_after(90):
        async with (
            Client(server),
            collecting(kafka_broker.bootstrap, [topics.response("analysis")]) as out,
        ):
            await wait_until(lambda: events_consuming(server), within=30)
            records = [(str(i).encode(), value) for i, (_, value) in enumerate(sent)]
            await produce(kafka_broker.bootstrap, topics.request("analysis"), records)
            await out.wait(lambda c: len(c.on(topics.response("analysis"))) == 16, within=60)
            metrics_text = (await get(server, "/metrics")).text
    types = {event["event_type"] for event in out.on(topics.response("analysis"))}
    assert types == {"codegen.analysis.completed"}
    calls = tool_call_samples(metrics_text)
    assert calls["code_analyze", "ok"] == 16
    assert calls.get(("code_analyze", "busy"), 0) == 0
