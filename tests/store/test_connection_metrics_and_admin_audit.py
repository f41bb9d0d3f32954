"""connection_metrics and the admin actions' audit rows through an assembled gateway with
real stdio upstreams and a real SQLite file: connects and failures come from the upstreams'
supervision, calls from the tool calls, breaker transitions from the breakers, the
database's own connect and writes from the store; every upstream restart (by the tool or by
a webhook) is an audit row, an unknown upstream a reject."""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from tests.store.test_webhooks_and_audit import rows
from tests.support import wait_until
from tests.upstreams.conftest import HERE, WriteManifest
from tests.workflow.coordinator import Coordinator, serving

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

HOOK_SECRET = "canary-hook-secret-" + "4" * 16


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def signed(body: bytes, delivery: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    message = f"{stamp}.{delivery}.".encode() + body
    mac = hmac.new(HOOK_SECRET.encode(), message, hashlib.sha256)
    return {
        "content-type": "application/json",
        "x-archon-timestamp": stamp,
        "x-archon-signature": "sha256=" + mac.hexdigest(),
        "x-archon-delivery": delivery,
    }


async def test_connects_failures_calls_and_breaker_transitions_land_per_upstream_and_database(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": 0.1})
    write_manifest(
        "broken", toolbox=False, command=sys.executable, args=[str(HERE / "exit_at_start.py")]
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'archon.db'}"
    settings = Settings(
        transport="http",  # type: ignore[arg-type]
        data_dir=tmp_path / "data",
        manifests_dir=manifests_dir,
        database_url=url,  # type: ignore[arg-type]
        breaker_fail_max=1,
        breaker_reset_timeout=30,
        upstream_restart_backoff=0.05,
        hook_secrets={"ci": HOOK_SECRET},  # type: ignore[dict-item]
        hook_actions={"ci": {"deploy": "restart_upstream:toolbox"}},
        store_flush_interval=0.01,
    )
    clock = Clock()
    server = build_gateway(settings, environ=dict(os.environ), clock=clock)
    app = build_http_app(server, "/mcp")
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw")
    with anyio.fail_after(120):
        async with app.router.lifespan_context(app), Client(server) as client, web:
            assert (await client.call_tool("toolbox_echo", {"text": "a"})).data == "a"
            restarted = await client.call_tool("gateway_restart_upstream", {"name": "toolbox"})
            assert restarted.structured_content is not None
            assert restarted.structured_content["state"] == "ready"
            unknown = await client.call_tool(
                "gateway_restart_upstream", {"name": "nobody"}, raise_on_error=False
            )
            assert unknown.is_error

            body = b'{"event": "deploy"}'
            hooked = await web.post("/hooks/ci", content=body, headers=signed(body, "d-7"))
            assert hooked.status_code == 202, hooked.text

            async def acted() -> bool:
                found = await rows(url, "SELECT status FROM hook_events")
                return bool(found) and found[0]["status"] == "acted"

            await wait_until(acted, within=60)

            # One timeout opens the tool's breaker (fail_max 1); after the reset timeout a
            # trial call half-opens it and its timeout opens it again: three transitions.
            for advance in (31, 0):
                hang = await client.call_tool("toolbox_hang", {}, raise_on_error=False)
                assert hang.is_error
                clock.now += advance

            async def broken_failed_twice() -> bool:
                return bool(server_restarts(await web.get("/health")) >= 2)

            await wait_until(broken_failed_twice, within=60)

    totals: dict[tuple[str, str], dict[str, Any]] = {}
    columns = ("connects", "failures", "calls", "errors", "breaker_transitions")
    for row in await rows(url, "SELECT * FROM connection_metrics"):
        total = totals.setdefault((row["kind"], row["target"]), dict.fromkeys(columns, 0))
        for column in columns:
            total[column] += row[column]
    assert totals[("upstream", "toolbox")] == {
        "connects": 3,  # started, restarted by the tool, restarted by the webhook
        "failures": 0,
        "calls": 3,
        "errors": 2,
        "breaker_transitions": 0,  # a tool's timeouts are its own breaker's
    }
    assert totals[("upstream_tool", "toolbox_hang")]["breaker_transitions"] == 3
    broken = totals[("upstream", "broken")]
    assert broken["connects"] == 0
    assert broken["failures"] >= 2
    (database,) = [total for (kind, _), total in totals.items() if kind == "database"]
    assert database["connects"] == 1
    assert database["failures"] == 0
    assert database["calls"] >= 1  # batches written
    assert all("canary" not in target for _, target in totals)

    audit = await rows(
        url,
        "SELECT principal, outcome, reason, tool, transport, request_id FROM security_audit_log "
        "WHERE action = 'upstream_restart' ORDER BY id",
    )
    assert audit == [
        {
            "principal": "local",
            "outcome": "accept",
            "reason": "upstream toolbox ready",
            "tool": "gateway_restart_upstream",
            "transport": "stdio",
            "request_id": "",
        },
        {
            "principal": "local",
            "outcome": "reject",
            "reason": "no upstream named 'nobody' (upstreams: broken, toolbox)",
            "tool": "gateway_restart_upstream",
            "transport": "stdio",
            "request_id": "",
        },
        {
            "principal": "webhook:ci",
            "outcome": "accept",
            "reason": "upstream toolbox ready",
            "tool": "",
            "transport": "http",
            "request_id": "d-7",
        },
    ]


def server_restarts(health: httpx.Response) -> int:
    restarts: int = health.json()["upstreams"]["broken"]["restarts"]
    return restarts


WORKFLOW = "orchestrate_pattern_workflow"


async def test_an_http_backend_reports_connects_calls_failures_and_breaker_transitions(
    tmp_path: Path, refused_port: int
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'archon.db'}"

    def settings(coordinator_url: str) -> Settings:
        return Settings(
            data_dir=tmp_path / "data",
            enable_external_gateway=False,
            database_url=url,  # type: ignore[arg-type]
            workflow_coordinator_url=coordinator_url,
            breaker_fail_max=1,
            store_flush_interval=0.01,
        )

    coordinator = Coordinator()
    echo = {"workflow": "echo", "inputs": {"steps": 1, "step_seconds": 0.01}}
    with anyio.fail_after(60):
        async with serving(coordinator) as coordinator_url:
            gateway = build_gateway(settings(coordinator_url))
            async with Client(gateway) as client:
                done = await client.call_tool(WORKFLOW, echo)
                assert done.structured_content is not None
                coordinator.always_500 = True
                failed = await client.call_tool(WORKFLOW, echo, raise_on_error=False)
                assert failed.is_error  # a 500: an error, and the breaker opens
        # Nothing listens on this one: a failed connect, and its breaker opens too.
        nowhere = f"http://127.0.0.1:{refused_port}"
        async with Client(build_gateway(settings(nowhere))) as client:
            assert (await client.call_tool(WORKFLOW, echo, raise_on_error=False)).is_error

    found = await rows(
        url,
        "SELECT connects, failures, calls, errors, breaker_transitions FROM connection_metrics "
        "WHERE kind = 'http_backend' AND target = 'workflow coordinator'",
    )
    total = {column: sum(row[column] for row in found) for column in found[0]}
    assert total["connects"] >= 1
    assert total["failures"] == 1
    assert total["calls"] >= 3  # start, at least one poll, the 500, the refused connect
    assert total["errors"] == 2  # the 500 and the refused connect
    assert total["breaker_transitions"] == 2  # closed -> open, once per gateway
