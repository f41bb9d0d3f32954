"""A real stdio upstream that times out trips its breaker in the assembled gateway; the
breaker's clock is injected, so half-opening needs no sleep. Metrics and readiness are
scraped over the gateway's own HTTP app afterwards and must match the calls made."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client
from prometheus_client.parser import text_string_to_metric_families

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from tests.support import tool_call_samples
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def text_of(result: Any) -> str:
    text: str = result.content[0].text
    return text


def gauge(metrics_text: str, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    }


async def test_failing_upstream_opens_its_breaker_fails_fast_and_recovers_after_reset(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": 0.1})
    settings = Settings(
        data_dir=tmp_path / "data",
        manifests_dir=manifests_dir,
        breaker_fail_max=2,
        breaker_reset_timeout=30,
    )
    clock = Clock()
    server = build_gateway(settings, environ=dict(os.environ), clock=clock)

    @server.tool
    def native_ok() -> str:
        return "fine"

    @server.tool
    def native_broken() -> str:
        raise ValueError("broken on purpose")

    web = httpx.AsyncClient(
        transport=httpx.ASGITransport(build_http_app(server, "/mcp")), base_url="http://gw"
    )
    async with Client(server) as client, web:
        with anyio.fail_after(60):
            assert (await client.call_tool("toolbox_echo", {"text": "a"})).data == "a"
            # An upstream that answers with an error is alive: no breaker failure.
            bad = await client.call_tool("toolbox_add", {"a": "x", "b": 1}, raise_on_error=False)
            assert bad.is_error
            for _ in range(2):
                timed_out = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
                assert text_of(timed_out) == "toolbox_hang timed out after 0.1 s"

            # Open: every tool of that upstream fails fast, native tools are unaffected.
            clock.now += 10.5
            for tool, args in (("toolbox_echo", {"text": "b"}), ("toolbox_hang", {})):
                fast = await client.call_tool(tool, args, raise_on_error=False)
                assert fast.is_error
                assert text_of(fast) == (
                    "upstream toolbox unavailable (circuit open, retry in 20 s)"
                )
            assert (await client.call_tool("native_ok", {})).data == "fine"
            assert (await client.call_tool("native_broken", {}, raise_on_error=False)).is_error

            ready = await web.get("/health/ready")
            assert ready.status_code == 200  # one upstream's breaker: degraded, still ready
            body = ready.json()
            assert body["ready"] is True
            assert body["status"] == "degraded"
            assert body["breakers"]["upstream toolbox"] == {
                "state": "open",
                "fail_counter": 2,
                "retry_in_s": 20,
            }
            assert body["components"]["breakers"]["status"] == "degraded"
            scraped = (await web.get("/metrics")).text
            assert gauge(scraped, "archon_breaker_state")[("upstream toolbox", "open")] == 1

            # Half-open after the reset timeout: one trial call; success closes it.
            clock.now += 20
            assert (await client.call_tool("toolbox_echo", {"text": "c"})).data == "c"
            assert (await web.get("/health/ready")).json()["breakers"]["upstream toolbox"][
                "state"
            ] == "closed"

            # A failed trial re-opens it at once (fail_max does not apply to trials).
            for _ in range(2):
                await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            clock.now += 30
            await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            again = await client.call_tool("toolbox_echo", {"text": "d"}, raise_on_error=False)
            assert text_of(again) == "upstream toolbox unavailable (circuit open, retry in 30 s)"

            scraped = (await web.get("/metrics")).text

    assert tool_call_samples(scraped) == {
        ("toolbox_echo", "ok"): 2,
        ("toolbox_add", "error"): 1,
        ("toolbox_hang", "timeout"): 5,
        ("toolbox_echo", "circuit_open"): 2,
        ("toolbox_hang", "circuit_open"): 1,
        ("native_ok", "ok"): 1,
        ("native_broken", "error"): 1,
    }
    states = gauge(scraped, "archon_breaker_state")
    assert states == {
        ("upstream toolbox", "closed"): 0,
        ("upstream toolbox", "open"): 1,
        ("upstream toolbox", "half_open"): 0,
    }
    latency_counts = {
        sample.labels["tool"]: sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "archon_tool_call_duration_seconds_count"
    }
    assert latency_counts["toolbox_hang"] == 6
    assert latency_counts["toolbox_echo"] == 4


async def test_breakers_can_be_switched_off(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": 0.05})
    settings = Settings(
        data_dir=tmp_path / "data",
        manifests_dir=manifests_dir,
        breaker_fail_max=1,
        breakers_enabled=False,
    )
    server = build_gateway(settings, environ=dict(os.environ))
    async with Client(server) as client:
        with anyio.fail_after(60):
            for _ in range(3):
                result = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
                assert text_of(result) == "toolbox_hang timed out after 0.05 s"
            assert (await client.call_tool("toolbox_echo", {"text": "ok"})).data == "ok"


async def test_an_upstreams_own_error_answers_do_not_trip_its_breaker(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("junk", args=[str(Path(__file__).parent / "garbage_server.py")])
    settings = Settings(data_dir=tmp_path / "data", manifests_dir=manifests_dir, breaker_fail_max=2)
    server = build_gateway(settings, environ=dict(os.environ))
    async with Client(server) as client:
        with anyio.fail_after(30):
            for _ in range(4):
                refused = await client.call_tool(
                    "junk_echo", {"text": "reject"}, raise_on_error=False
                )
                assert refused.is_error
                assert "upstream 'junk' error -32602: cannot do tools/call" in text_of(refused)
            fine = await client.call_tool("junk_echo", {"text": "still served"})
    assert text_of(fine) == "still served"
