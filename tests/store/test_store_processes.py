"""The store under a real gateway process: killed with SIGKILL in the middle of a stream of
audited requests, and started against a database it cannot reach."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
from pathlib import Path

import anyio
import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.support import running_http_gateway, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

TOKEN = "kill-nine-token-" + "3" * 20


def flushed(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith('archon_store_flushed_total{table="security_audit_log"}'):
            return float(line.split()[-1])
    return 0.0


async def test_kill_9_mid_stream_leaves_a_database_holding_every_row_reported_flushed(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = gateway_env | {"ARCHON_SERVICE_AUTH_TOKEN": TOKEN, "ARCHON_STORE_FLUSH_INTERVAL": "0.02"}
    headers = {"x-service-auth": TOKEN}
    acknowledged = 0.0
    async with running_http_gateway(env, tmp_path) as (process, url, _stderr):
        base = url.removesuffix("/mcp")
        async with httpx.AsyncClient(base_url=base, timeout=10) as web:

            async def audited_requests() -> None:
                with contextlib.suppress(httpx.HTTPError):  # until the kill
                    while True:  # each authenticated request is one audit row
                        await web.get("/health", headers=headers)

            async with anyio.create_task_group() as tasks:
                for _ in range(4):
                    tasks.start_soon(audited_requests)

                async def enough_flushed() -> bool:
                    return flushed((await web.get("/metrics")).text) >= 300

                await wait_until(enough_flushed, within=60)
                acknowledged = flushed((await web.get("/metrics")).text)
                process.send_signal(signal.SIGKILL)
                await process.wait()
                tasks.cancel_scope.cancel()
    database = Path(env["ARCHON_DATA_DIR"]) / "archon.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (rows,) = connection.execute("SELECT count(*) FROM security_audit_log").fetchone()
        (leaked,) = connection.execute(
            "SELECT count(*) FROM security_audit_log WHERE principal || reason || path LIKE ?",
            (f"%{TOKEN}%",),
        ).fetchone()
    assert rows >= acknowledged >= 300
    assert leaked == 0


async def test_an_unreachable_database_shows_in_readiness_while_tools_keep_working(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    nowhere = tmp_path / "no-server-here"
    nowhere.mkdir()
    env = gateway_env | {
        "ARCHON_DATABASE_URL": f"postgresql+asyncpg://archon:pw-canary@/archon?host={nowhere}",
        "ARCHON_SERVICE_AUTH_TOKEN": TOKEN,
    }
    headers = {"x-service-auth": TOKEN}
    async with running_http_gateway(env, tmp_path) as (_process, url, stderr):
        base = url.removesuffix("/mcp")
        async with httpx.AsyncClient(base_url=base, timeout=10) as web:

            async def store_down() -> bool:
                body = (await web.get("/health/ready", headers=headers)).json()
                return bool(body["components"]["store"]["status"] == "down")

            await wait_until(store_down, within=60)
            ready = await web.get("/health/ready", headers=headers)
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            detail = ready.json()["components"]["store"]["detail"]
            assert detail.startswith("cannot open postgresql postgresql+asyncpg://archon:***@")
            transport = StreamableHttpTransport(url, headers=headers)
            async with Client(transport) as client:
                info = await client.call_tool("gateway_info", {})
            assert info.structured_content is not None
            assert info.structured_content["components"]["store"]["status"] == "down"
    assert "pw-canary" not in stderr.read_text()
