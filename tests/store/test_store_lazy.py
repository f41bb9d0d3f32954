"""The store costs a cold start nothing: SQLAlchemy, Alembic and the database drivers are not
imported while the gateway is built and serving, only once a first row needs writing (and
then in a worker thread, after the caller has its answer), and Alembic only when the
database is not at the newest schema yet. Run in fresh interpreters, so nothing else in the
test session has imported them already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.processes

HEAVY = ("sqlalchemy", "alembic", "aiosqlite", "asyncpg")


def test_sqlalchemy_and_alembic_load_only_when_the_store_is_first_needed(tmp_path: Path) -> None:
    code = f"""
import json, sys, anyio, httpx
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings

def loaded():
    return sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))

INIT = {{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {{
    "protocolVersion": "2025-06-18", "capabilities": {{}},
    "clientInfo": {{"name": "lazy", "version": "1"}}}}}}

async def main():
    settings = Settings(transport="http", data_dir={str(tmp_path)!r}, enable_external_gateway=False)
    app = build_http_app(build_gateway(settings), "/mcp")
    report = {{"built": loaded()}}
    with anyio.fail_after(60):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as web:
                health = (await web.get("/health")).json()
                report["serving"] = loaded()
                report["store_before"] = health["components"]["store"]
                accept = {{"accept": "application/json, text/event-stream"}}
                answer = await web.post("/mcp", json=INIT, headers=accept)
                report["initialize"] = answer.status_code
                while True:  # bounded by fail_after: the store opens in the background
                    store = (await web.get("/health")).json()["components"]["store"]
                    if store["detail"].startswith("sqlite"):
                        break
                    await anyio.sleep(0.02)
                report["used"] = loaded()
    print(json.dumps(report))

anyio.run(main)
"""
    first, again = run(code), run(code)
    for report in (first, again):
        assert report["built"] == []
        assert report["serving"] == []
        assert report["store_before"]["detail"] == "opens on first use"
        assert report["initialize"] == 200
    # The first session row opened it: now they are loaded (so the checks above can fail).
    assert {"sqlalchemy", "alembic", "aiosqlite"} <= set(first["used"])
    # A database already at the newest schema opens without Alembic.
    assert {"sqlalchemy", "aiosqlite"} <= set(again["used"])
    assert "alembic" not in again["used"]


def run(code: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report
