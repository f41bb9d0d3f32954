"""A real stdio upstream's tool that times out trips that tool's breaker in the assembled
gateway, and a crash trips the upstream's; the breakers' clock is injected, so half-opening
needs no sleep. Metrics and readiness are
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


async def test_one_tools_timeouts_open_that_tools_breaker_only_and_it_recovers_after_reset(
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

            # Open for that tool only: it fails fast; the upstream's other tools still work.
            clock.now += 10.5
            fast = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            assert fast.is_error
            assert text_of(fast) == "tool toolbox_hang unavailable (circuit open, retry in 20 s)"
            assert (await client.call_tool("toolbox_echo", {"text": "b"})).data == "b"
            assert (await client.call_tool("native_ok", {})).data == "fine"
            assert (await client.call_tool("native_broken", {}, raise_on_error=False)).is_error

            ready = await web.get("/health/ready")
            assert ready.status_code == 200  # one tool's breaker: degraded, still ready
            body = ready.json()
            assert body["ready"] is True
            assert body["status"] == "degraded"
            assert body["breakers"]["tool toolbox_hang"] == {
                "state": "open",
                "fail_counter": 2,
                "retry_in_s": 20,
            }
            assert body["breakers"]["upstream toolbox"]["state"] == "closed"
            assert body["components"]["breakers"]["status"] == "degraded"
            scraped = (await web.get("/metrics")).text
            assert gauge(scraped, "archon_breaker_state")[("tool toolbox_hang", "open")] == 1

            # Half-open after the reset timeout: one trial call; a failed trial re-opens it
            # at once (fail_max does not apply to trials).
            clock.now += 20
            await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            again = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
            assert text_of(again) == "tool toolbox_hang unavailable (circuit open, retry in 30 s)"

            scraped = (await web.get("/metrics")).text

    assert tool_call_samples(scraped) == {
        ("toolbox_echo", "ok"): 2,
        ("toolbox_add", "error"): 1,
        ("toolbox_hang", "timeout"): 3,
        ("toolbox_hang", "circuit_open"): 2,
        ("native_ok", "ok"): 1,
        ("native_broken", "error"): 1,
    }
    states = gauge(scraped, "archon_breaker_state")
    assert states[("upstream toolbox", "closed")] == 1
    assert states[("tool toolbox_hang", "open")] == 1
    assert states[("tool toolbox_echo", "closed")] == 1


async def test_an_upstream_wide_fault_opens_the_upstreams_breaker_for_all_its_tools(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("faulty", faulty="crash-on-call")
    settings = Settings(
        data_dir=tmp_path / "data",
        manifests_dir=manifests_dir,
        breaker_fail_max=1,
        breaker_reset_timeout=30,
        upstream_restart_backoff=0.05,
    )
    clock = Clock()
    server = build_gateway(settings, environ=dict(os.environ), clock=clock)
    async with Client(server) as client:
        with anyio.fail_after(60):
            assert text_of(await client.call_tool("faulty_echo", {"text": "a"})) == "a"
            crashed = await client.call_tool("faulty_crash", {}, raise_on_error=False)
            assert "exited with code 3" in text_of(crashed)
            fast = await client.call_tool("faulty_echo", {"text": "b"}, raise_on_error=False)
            assert text_of(fast) == "upstream faulty unavailable (circuit open, retry in 30 s)"


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
