"""Webhooks, the audit trail and the admin tools through an assembled gateway (HTTP in
process), on a real SQLite file and a real PostgreSQL database: signatures, replay window,
idempotent deliveries, bounds, audit rows for security events, and no secret stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client
from sqlalchemy import text

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from archon_gateway.store import database
from tests.support import wait_until

pytestmark = pytest.mark.anyio

TOKEN = "canary-token-" + "7" * 24  # the service token: must never reach the store
HOOK_SECRET = "canary-hook-secret-" + "5" * 16
ARGUMENT_CANARY = "canary-argument-value-31337"


@asynccontextmanager
async def gateway(
    tmp_path: Path, url: str, **extra: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Client[Any]]]:
    settings = Settings(
        transport="http",  # type: ignore[arg-type]
        data_dir=tmp_path,
        database_url=url,  # type: ignore[arg-type]
        enable_external_gateway=False,
        service_auth_token=TOKEN,  # type: ignore[arg-type]
        hook_secrets={"ci": HOOK_SECRET, "github": HOOK_SECRET},  # type: ignore[dict-item]
        hook_actions={"ci": {"deploy": "restart_upstream:search"}},
        store_flush_interval=0.01,
        **extra,
    )
    server = build_gateway(settings)
    app = build_http_app(server, "/mcp")
    with anyio.fail_after(90):
        async with app.router.lifespan_context(app), Client(server) as local:
            transport = httpx.ASGITransport(app, client=("127.0.0.9", 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as web:
                yield web, local


def signed(body: bytes, *, at: float | None = None, delivery: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    delivery = delivery or uuid.uuid4().hex
    message = f"{stamp}.{delivery}.".encode() + body
    mac = hmac.new(HOOK_SECRET.encode(), message, hashlib.sha256)
    return {
        "content-type": "application/json",
        "x-archon-timestamp": stamp,
        "x-archon-signature": "sha256=" + mac.hexdigest(),
        "x-archon-delivery": delivery,
    }


async def rows(url: str, query: str) -> list[dict[str, Any]]:
    engine = database.open_engine(database.parse_url(url))
    try:
        async with engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(text(query))]
    finally:
        await engine.dispose()


async def audit_reasons(url: str, action: str) -> list[str]:
    found = await rows(
        url, f"SELECT reason FROM security_audit_log WHERE action = '{action}' ORDER BY id"
    )
    return [row["reason"] for row in found]


async def test_a_signed_delivery_is_stored_once_and_a_redelivery_acknowledged(
    tmp_path: Path, database_url: str
) -> None:
    body = json.dumps({"event": "deploy", "ref": "main"}).encode()
    headers = signed(body, delivery="d-1")
    async with gateway(tmp_path, database_url) as (web, _):
        first = await web.post("/hooks/ci", content=body, headers=headers)
        assert first.status_code == 202, first.text
        assert first.json() == {
            "status": "accepted",
            "delivery": "d-1",
            "event": "deploy",
            "action": "restart_upstream:search",
        }
        again = await web.post("/hooks/ci", content=body, headers=headers)
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"

        async def acted() -> bool:
            found = await rows(database_url, "SELECT status, detail FROM hook_events")
            return found[0]["status"] != "received"

        await wait_until(acted)
    stored = await rows(
        database_url, "SELECT source, delivery_id, event, status, detail FROM hook_events"
    )
    assert stored == [
        {
            "source": "ci",
            "delivery_id": "d-1",
            "event": "deploy",
            "status": "failed",
            "detail": "no action 'restart_upstream' in this gateway",
        }
    ]
    # The handler's outcome reached the event metrics interface (flushed at shutdown).
    events = await rows(
        database_url, "SELECT event_type, handler, processed, failed FROM event_metrics"
    )
    assert events == [
        {"event_type": "hook:ci", "handler": "restart_upstream", "processed": 0, "failed": 1}
    ]


async def test_github_deliveries_are_verified_with_x_hub_signature_256(
    tmp_path: Path, database_url: str
) -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    mac = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": f"sha256={mac}",
        "x-github-event": "ping",
        "x-github-delivery": "gh-1",
    }
    async with gateway(tmp_path, database_url) as (web, _):
        answer = await web.post("/hooks/github", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        assert answer.json()["event"] == "ping"
        headers["x-hub-signature-256"] = "sha256=" + "0" * 64
        forged = await web.post("/hooks/github", content=body, headers=headers)
        assert forged.status_code == 401


async def test_bad_webhooks_get_a_clear_status_and_signature_failures_an_audit_row(
    tmp_path: Path, database_url: str
) -> None:
    body = b'{"event": "x"}'
    old = signed(body, at=time.time() - 3600)
    wrong = signed(body) | {"x-archon-signature": "sha256=" + "ab" * 32}
    unsigned = {k: v for k, v in signed(body).items() if k != "x-archon-signature"}
    async with gateway(tmp_path, database_url, hook_max_bytes=2048) as (web, _):
        cases = [
            ("/hooks/ci", body, wrong, 401, "bad_signature"),
            ("/hooks/ci", body, unsigned, 401, "missing_signature"),
            ("/hooks/ci", body, old, 401, "stale_timestamp"),
            ("/hooks/ci", b"x" * 4096, signed(b"x" * 4096), 413, "too_large"),
            ("/hooks/ci", body, signed(body) | {"content-type": "text/plain"}, 415, "not_json"),
            ("/hooks/ci", b"{nope", signed(b"{nope"), 400, "bad_json"),
            (
                "/hooks/ci",
                b"[" * 300 + b"]" * 300,
                signed(b"[" * 300 + b"]" * 300),
                400,
                "too_deep",
            ),
            ("/hooks/nobody", body, signed(body), 404, "unknown_source"),
        ]
        for path, content, headers, status, reason in cases:
            answer = await web.post(path, content=content, headers=headers)
            assert (answer.status_code, answer.json()["reason"]) == (status, reason)
    assert await audit_reasons(database_url, "webhook") == [
        "bad_signature",
        "missing_signature",
        "stale_timestamp",
    ]
    assert await rows(database_url, "SELECT id FROM hook_events") == []


async def test_admin_tools_need_the_service_principal_and_no_secret_is_ever_stored(
    tmp_path: Path, database_url: str
) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "canary-client", "version": "9"},
        },
    }
    async with gateway(tmp_path, database_url) as (web, local):
        refused = await web.post("/mcp", json=init, headers=ACCEPT | {"x-service-auth": "w" * 20})
        assert refused.status_code == 401
        service = await http_session(web, {"x-service-auth": TOKEN}, "canary-client")
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "audit_query", "arguments": {"principal": ARGUMENT_CANARY}},
        }
        answer = await web.post("/mcp", json=call, headers=service)
        assert answer.status_code == 200
        assert '"isError":false' in answer.text.replace(" ", "")

        # In process (like stdio) the caller is the local user: allowed.
        async def audited() -> bool:
            page = await local.call_tool("audit_query", {"action": "auth"})
            assert page.structured_content is not None
            reasons = {row["reason"] for row in page.structured_content["rows"]}
            return {"service_token", "invalid_service_token"} <= reasons

        await wait_until(audited)
    dump = json.dumps(
        [await rows(database_url, f"SELECT * FROM {table}") for table in TABLES], default=str
    )
    assert "canary-client" in dump  # the session row is there
    for secret in (TOKEN, HOOK_SECRET, ARGUMENT_CANARY, "w" * 20):
        assert secret not in dump


ACCEPT = {"accept": "application/json, text/event-stream"}


def initialize(client: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": client, "version": "9"},
        },
    }


async def http_session(web: httpx.AsyncClient, auth: dict[str, str], client: str) -> dict[str, str]:
    """Headers of a handshake-era MCP session opened over HTTP."""
    headers = ACCEPT | auth
    opened = await web.post("/mcp", json=initialize(client), headers=headers)
    assert opened.status_code == 200, opened.text
    headers |= {
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await web.post("/mcp", json=done, headers=headers)
    return headers


TABLES = ("security_audit_log", "service_sessions", "hook_events", "node_registrations")


async def test_over_http_without_the_service_principal_admin_tools_are_refused(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        transport="http",  # type: ignore[arg-type]
        data_dir=tmp_path,
        database_url=database_url,  # type: ignore[arg-type]
        enable_external_gateway=False,
    )
    server = build_gateway(settings)
    app = build_http_app(server, "/mcp")
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "session_list", "arguments": {}},
    }
    with anyio.fail_after(60):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as web:
                headers = await http_session(web, {}, "anyone")
                answer = await web.post("/mcp", json=call, headers=headers)
    assert "session_list is an admin tool: over HTTP it needs the service token" in answer.text
