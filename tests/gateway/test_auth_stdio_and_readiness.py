"""The stdio token requirement (real gateway processes), readiness answers, and the auth
settings' env names and one-line errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from fastmcp import FastMCP

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.core.health import ComponentRegistry, ComponentStatus
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.http import add_http_routes, build_http_app
from archon_gateway.gateway.settings import load_settings
from tests.support import (
    URL_PATTERN,
    RawStdioPeer,
    running_gateway,
    tool_call_samples,
    wait_for_text,
)

pytestmark = pytest.mark.anyio

SERVICE_TOKEN = "svc-0123456789abcdef-SERVICE-SECRET"


@pytest.mark.processes
async def test_stdio_requiring_a_token_refuses_a_wrong_one_and_counts_rejections(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **gateway_env,
        "SERVICE_AUTH_TOKEN": SERVICE_TOKEN,
        "ARCHON_AUTH_STDIO_REQUIRE_TOKEN": "true",
        "ARCHON_AUTH_STDIO_TOKEN": "not-the-right-token-at-all",
    }
    with anyio.fail_after(60):
        async with running_gateway(env, tmp_path, "--transport", "both", "--port", "0") as (
            process,
            stderr,
        ):
            peer = RawStdioPeer(process)
            assert "result" in await peer.initialize()
            listed = await peer.request("tools/list")
            assert listed["error"]["code"] == -32001
            assert "ARCHON_AUTH_STDIO_TOKEN" in listed["error"]["message"]
            called = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            assert called["result"]["isError"] is True
            assert "requires a token on stdio" in called["result"]["content"][0]["text"]
            url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
            async with httpx.AsyncClient() as web:
                scraped = await web.get(
                    url.replace("/mcp", "/metrics"), headers={"X-Service-Auth": SERVICE_TOKEN}
                )
            assert tool_call_samples(scraped.text) == {("gateway_info", "rejected"): 1}
        log = stderr.read_text()
        assert log.count('"action": "reject"') == 3  # at start, tools/list, tools/call
        assert "not-the-right-token" not in log
        assert SERVICE_TOKEN not in log


@pytest.mark.processes
async def test_stdio_with_the_right_token_serves_tools(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **gateway_env,
        "ARCHON_SERVICE_AUTH_TOKEN": SERVICE_TOKEN,
        "ARCHON_AUTH_STDIO_REQUIRE_TOKEN": "true",
        "ARCHON_AUTH_STDIO_TOKEN": SERVICE_TOKEN,
    }
    with anyio.fail_after(60):
        async with running_gateway(env, tmp_path) as (process, _stderr):
            peer = RawStdioPeer(process)
            await peer.initialize()
            called = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            assert called["result"]["isError"] is False


@asynccontextmanager
async def health_routes(
    server: FastMCP, components: ComponentRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's HTTP routes over `server`, served in this process to a web client."""
    add_http_routes(server, GatewayMetrics(), components)
    app = build_http_app(server, "/mcp")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as web:
        yield web


async def test_readiness_is_503_when_a_critical_component_is_down() -> None:
    server = FastMCP("readiness")
    components = ComponentRegistry()
    components.register("store", lambda: ComponentStatus("down", "database is locked"))
    components.register("upstream:zen", lambda: ComponentStatus("down"), critical=False)
    async with health_routes(server, components) as web:
        alive = await web.get("/health")
        assert alive.status_code == 200
        assert alive.json()["status"] == "down"
        for path in ("/health/ready", "/health?ready=1", "/health?ready=true"):
            ready = await web.get(path)
            assert ready.status_code == 503, path
            body = ready.json()
            assert body["ready"] is False
            assert body["components"]["store"] == {
                "status": "down",
                "detail": "database is locked",
            }


async def test_readiness_is_200_when_only_optional_components_are_down() -> None:
    server = FastMCP("readiness")
    components = ComponentRegistry()
    components.register("native_tools", lambda: ComponentStatus("ok"))
    components.register("upstream:zen", lambda: ComponentStatus("down"), critical=False)
    async with health_routes(server, components) as web:
        ready = await web.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ARCHON_") or name == "SERVICE_AUTH_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_env")
def test_service_token_is_read_from_either_env_name_and_picks_service_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().effective_auth_mode == "none"
    monkeypatch.setenv("SERVICE_AUTH_TOKEN", SERVICE_TOKEN)
    settings = load_settings()
    assert settings.effective_auth_mode == "service"
    assert settings.service_auth_token is not None
    assert settings.service_auth_token.get_secret_value() == SERVICE_TOKEN
    assert SERVICE_TOKEN not in repr(settings)
    monkeypatch.delenv("SERVICE_AUTH_TOKEN")
    monkeypatch.setenv("ARCHON_SERVICE_AUTH_TOKEN", SERVICE_TOKEN + "x")
    token = load_settings().service_auth_token
    assert token is not None
    assert token.get_secret_value() == SERVICE_TOKEN + "x"


@pytest.mark.usefixtures("clean_env")
def test_bad_auth_settings_fail_in_one_line_without_showing_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICE_AUTH_TOKEN", "short-secret")
    with pytest.raises(SettingsInvalid) as short:
        load_settings()
    assert str(short.value) == (
        "invalid setting 'service_auth_token': must be at least 16 characters "
        "(the value is not shown)"
    )
    monkeypatch.delenv("SERVICE_AUTH_TOKEN")
    config = tmp_path / "archon.toml"
    config.write_text(f'service_auth_token = "{SERVICE_TOKEN}"\nauth_mode = "service_or_user"\n')
    with pytest.raises(SettingsInvalid) as incomplete:
        load_settings()
    message = str(incomplete.value)
    assert "\n" not in message
    assert SERVICE_TOKEN not in message
    assert "auth_mode 'service_or_user' needs auth_jwt_jwks_uri" in message


@pytest.mark.processes
async def test_a_bad_auth_setting_stops_the_cli_with_exit_2(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**gateway_env, "ARCHON_AUTH_MODE": "service"}
    with anyio.fail_after(30):
        async with running_gateway(env, tmp_path, stdin=subprocess.DEVNULL) as (process, stderr):
            assert await process.wait() == 2
    assert "auth_mode 'service' needs SERVICE_AUTH_TOKEN" in stderr.read_text()
