"""Lifecycle events from a real supervised upstream, and an admin event that restarts it,
through an in-process gateway with Kafka."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from fastmcp import Client

from archon_gateway.events.topics import Topics
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.settings import Settings
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.manifest_writer import to_toml
from tests.events.conftest import Broker
from tests.events.kafka_support import collecting, produce, request, unique
from tests.upstreams.conftest import FAULTY

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def test_upstream_crashes_and_restarts_are_announced_and_an_event_restarts_it(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    faulty = Manifest(name="faulty", command=sys.executable, args=[str(FAULTY), "crash-on-call"])
    (manifests / "faulty.toml").write_text(to_toml(faulty))
    prefix = unique("life")
    topics = Topics(prefix)
    settings = Settings(  # type: ignore[call-arg]
        transport="http",
        data_dir=tmp_path,
        manifests_dir=manifests,
        upstream_restart_backoff=0.1,
        kafka_bootstrap_servers=kafka_broker.bootstrap,
        kafka_topic_prefix=prefix,
        kafka_group_id=unique("g"),
        kafka_session_timeout=1.5,
        kafka_topic_partitions=1,
    )
    server = build_gateway(settings)
    restart_id, restart = request("gateway.upstream.restart.requested", {"upstream": "faulty"})
    with anyio.fail_after(60):
        async with (
            Client(server) as client,
            collecting(
                kafka_broker.bootstrap, [topics.lifecycle, topics.response("gateway-admin")]
            ) as out,
        ):

            def announced() -> list[str]:
                return [event["event_type"] for event in out.on(topics.lifecycle)]

            await out.wait(lambda c: announced() == ["gateway.upstream.started"])
            await client.call_tool("faulty_crash", {}, raise_on_error=False)
            await out.wait(
                lambda c: (
                    announced()[1:] == ["gateway.upstream.crashed", "gateway.upstream.started"]
                )
            )
            await produce(
                kafka_broker.bootstrap, topics.request("gateway-admin"), [(b"faulty", restart)]
            )
            await out.wait(lambda c: bool(c.on(topics.response("gateway-admin"))))
            await out.wait(lambda c: announced().count("gateway.upstream.started") == 3)
    answer = out.on(topics.response("gateway-admin"))[0]
    assert answer["correlation_id"] == restart_id
    assert answer["payload"]["result"]["state"] == "ready"
    assert answer["payload"]["result"]["restarts"] == 2
    crashed = out.on(topics.lifecycle)[1]["payload"]
    assert crashed["upstream"] == "faulty"
    assert "exited with code 3" in crashed["error"]
