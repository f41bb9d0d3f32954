"""DNS rebinding: a web page whose name resolves to 127.0.0.1 must not reach the gateway.

Real HTTP on 127.0.0.1 (the gateway served in-process on a port chosen at bind), with the
`Host` and `Origin` a browser would send after the page rebinds its name.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import fastmcp
import httpx
import pytest

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.host_guard import HostRules, host_policy
from archon_gateway.gateway.settings import Settings, load_settings
from tests.support import gateway_command, served_over_http

pytestmark = pytest.mark.anyio

EVIL = "evil.example"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "rebinding-test", "version": "0"},
    },
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """The gateway served over HTTP on 127.0.0.1, port 0 (the real one is chosen at bind);
    yields a client for it and that port."""
    with anyio.fail_after(30):
        async with served_over_http(build_gateway(settings)) as base:
            port = int(base.rsplit(":", 1)[1])
            async with httpx.AsyncClient(base_url=base, trust_env=False) as web:
                yield web, port


async def initialize(web: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await web.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})


def refusal(response: httpx.Response) -> dict[str, Any]:
    """The one-line JSON body of a refusal."""
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_rebound_host_is_refused_with_421_and_the_next_request_is_served(
    tmp_path: Path,
) -> None:
    async with serving(Settings(transport="http", data_dir=tmp_path)) as (web, port):
        rebound = await initialize(web, host=f"{EVIL}:{port}", origin=f"http://{EVIL}")
        assert rebound.status_code == 421
        body = refusal(rebound)
        assert body["reason"] == "host_not_allowed"
        assert f"'{EVIL}:{port}'" in body["error"]
        assert "allowed_hosts (ARCHON_ALLOWED_HOSTS)" in body["error"]

        served = await initialize(web)
        assert served.status_code == 200
        assert "serverInfo" in served.text


async def test_a_foreign_origin_is_refused_with_403_even_with_a_loopback_host(
    tmp_path: Path,
) -> None:
    async with serving(Settings(transport="http", data_dir=tmp_path)) as (web, port):
        for origin in (f"http://{EVIL}", f"http://localhost:{port + 1}", "null"):
            refused = await initialize(web, origin=origin)
            assert refused.status_code == 403, origin
            assert refusal(refused)["reason"] == "origin_not_allowed"
        origins = [("origin", f"http://localhost:{port}"), ("origin", f"http://{EVIL}")]
        two = await web.post("/mcp", json=INITIALIZE, headers=[*MCP_HEADERS.items(), *origins])
        assert two.status_code == 403


async def test_loopback_names_with_the_bound_port_are_served_with_or_without_origin(
    tmp_path: Path,
) -> None:
    async with serving(Settings(transport="http", data_dir=tmp_path)) as (web, port):
        for name in ("127.0.0.1", "localhost", "[::1]", "LocalHost"):
            host = f"{name}:{port}"
            for origin in (None, f"http://{host}"):
                headers = {"host": host} | ({"origin": origin} if origin else {})
                answered = await initialize(web, **headers)
                assert answered.status_code == 200, (host, origin)
        # The port must be the bound one: the same names on another port are refused.
        for host in (f"127.0.0.1:{port + 1}", "localhost", f"localhost:{port}.{EVIL}"):
            assert (await initialize(web, host=host)).status_code == 421, host


async def test_every_route_checks_the_host_first(tmp_path: Path) -> None:
    """/mcp/{profile}, /hooks/*, /metrics and /health's details are covered, and the Host
    check runs before the webhook's signature check (421, not 401)."""
    settings = Settings(
        transport="http", data_dir=tmp_path, hook_secrets={"ci": "s" * 32}, catalog_mode="full"
    )
    async with serving(settings) as (web, port):
        rebound = {"host": f"{EVIL}:{port}"}
        assert (await initialize(web)).status_code == 200
        profile = await web.post("/mcp/default", json=INITIALIZE, headers=MCP_HEADERS | rebound)
        assert profile.status_code == 421
        json_body = {"content-type": "application/json"}
        hook = await web.post("/hooks/ci", content=b"{}", headers=json_body | rebound)
        assert hook.status_code == 421
        assert (await web.post("/hooks/ci", content=b"{}", headers=json_body)).status_code == 401
        assert (await web.get("/metrics", headers=rebound)).status_code == 421
        assert (await web.get("/metrics")).status_code == 200
        # Unknown paths too: nothing answers a rebound page.
        assert (await web.get("/nowhere", headers=rebound)).status_code == 421


async def test_a_probe_by_ip_gets_the_health_status_and_nothing_else(tmp_path: Path) -> None:
    async with serving(Settings(transport="http", data_dir=tmp_path)) as (web, port):
        by_ip = {"host": f"10.1.2.3:{port}"}
        live = await web.get("/health", headers=by_ip)
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = await web.get("/health/ready", headers=by_ip)
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "ready": True})
        # The details stay for allowed hosts; a page's Origin is refused even on probes.
        assert "components" in (await web.get("/health")).json()
        foreign = await web.get("/health", headers=by_ip | {"origin": f"http://{EVIL}"})
        assert foreign.status_code == 403
        # Only the probe itself: the same Host may not post to it or read /health/x.
        assert (await web.post("/health", headers=by_ip)).status_code == 421


async def test_allowed_hosts_and_origins_add_to_the_defaults_and_fastmcps_guard_stays_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastMCP's own Host/Origin guard (on by FASTMCP_HTTP_HOST_ORIGIN_PROTECTION) would
    refuse the configured host; the gateway's guard is the only one."""
    monkeypatch.setattr(fastmcp.settings, "http_host_origin_protection", True)
    monkeypatch.setenv("ARCHON_ALLOWED_HOSTS", json.dumps(["GW.example:*", "10.0.0.5:8787"]))
    monkeypatch.setenv("ARCHON_ALLOWED_ORIGINS", json.dumps(["https://app.example"]))
    settings = load_settings(overrides={"transport": "http", "data_dir": tmp_path}, cwd=tmp_path)
    async with serving(settings) as (web, port):
        for host in (f"gw.example:{port}", "gw.example", "10.0.0.5:8787", f"localhost:{port}"):
            answered = await initialize(web, host=host, origin="https://app.example")
            assert answered.status_code == 200, host
        assert (await initialize(web, host="10.0.0.5:8788")).status_code == 421
        assert (await initialize(web, origin="http://app.example")).status_code == 403


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("ALLOWED_HOSTS", '["http://gw.example"]', "allowed_hosts.0"),
        ("ALLOWED_HOSTS", '["gw.example/mcp"]', "allowed_hosts.0"),
        ("ALLOWED_ORIGINS", '["gw.example"]', "allowed_origins.0"),
        ("ALLOWED_ORIGINS", '["https://app.example/path"]', "allowed_origins.0"),
        ("ALLOWED_ORIGINS", json.dumps(["https://a.example"] * 257), "allowed_origins"),
    ],
)
def test_malformed_allowed_entries_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, shown: str
) -> None:
    monkeypatch.setenv(f"ARCHON_{name}", value)
    with pytest.raises(SettingsInvalid, match=rf"invalid setting '{shown}'"):
        load_settings(cwd=tmp_path)


def test_a_non_loopback_bind_needs_allowed_hosts_unless_auth_is_on() -> None:
    with pytest.raises(SettingsInvalid, match=r"bound to 0\.0\.0\.0, not loopback.*allowed_hosts"):
        host_policy(HostRules(), "0.0.0.0", 8787)
    with_hosts = host_policy(HostRules(allowed_hosts=("gw.example:8787",)), "::", 8787)
    assert with_hosts.host_allowed("gw.example:8787")
    assert with_hosts.host_allowed("127.0.0.1:8787")
    assert not with_hosts.host_allowed(f"{EVIL}:8787")
    assert not with_hosts.host_allowed("[::]:8787")
    # The bound address itself stays allowed (what `archon-gateway reload` connects to).
    on_lan = host_policy(HostRules(allowed_hosts=("gw.example:8787",)), "192.0.2.10", 8787)
    assert on_lan.host_allowed("192.0.2.10:8787")
    assert not on_lan.host_allowed("192.0.2.10:8788")
    # With auth on and no allowed hosts: Host is not checked, Origin still is.
    with_auth = host_policy(HostRules(auth_required=True), "192.0.2.10", 8787)
    assert with_auth.host_allowed(f"{EVIL}:8787")
    assert not with_auth.origin_allowed(f"http://{EVIL}")
    assert with_auth.origin_allowed("http://localhost:8787")


@pytest.mark.processes
async def test_the_cli_refuses_a_non_loopback_bind_without_allowed_hosts_in_one_line(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """Refused before anything binds (exit 2, the settings' code); no socket is opened."""
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [gateway_command(), "serve", "--transport", "http", "--host", "0.0.0.0"],
            env=gateway_env,
            cwd=tmp_path,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("archon-gateway: error: HTTP is bound to 0.0.0.0, not loopback")
    assert "ARCHON_ALLOWED_HOSTS" in lines[0]
