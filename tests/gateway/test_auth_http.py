"""Service auth at the real HTTP front door (a gateway process on 127.0.0.1): what is
refused with 401 before any MCP work, what is accepted, what stays open, and that no
credential ever reaches the log, the metrics or an upstream."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.auth.providers.jwt import RSAKeyPair
from prometheus_client.parser import text_string_to_metric_families

from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.manifest_writer import to_toml
from tests.support import INITIALIZE, running_http_gateway
from tests.upstreams.conftest import TOOLBOX

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

SERVICE_TOKEN = "svc-0123456789abcdef-SERVICE-SECRET"
STDIO_TOKEN_UNUSED = "stdio-fedcba9876543210-NOT-FOR-LOGS"
ISSUER = "https://issuer.archon.test"
AUDIENCE = "archon-gateway"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE_BODY = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}


@pytest.fixture(scope="module")
def keys() -> RSAKeyPair:
    return RSAKeyPair.generate()


def write_toolbox_manifest(env: dict[str, str]) -> None:
    manifest = Manifest(name="toolbox", command=sys.executable, args=[str(TOOLBOX)])
    (Path(env["ARCHON_MANIFESTS_DIR"]) / "toolbox.toml").write_text(to_toml(manifest))


async def post_initialize(web: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await web.post("/mcp", json=INITIALIZE_BODY, headers={**MCP_HEADERS, **headers})


async def active_http_sessions(web: httpx.AsyncClient, headers: dict[str, str]) -> float:
    text = (await web.get("/metrics", headers=headers)).text
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "archon_active_sessions" and sample.labels["transport"] == "http"
    )


def rejections(metrics_text: str) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "archon_auth_rejections_total"
    }


async def test_service_token_or_user_jwt_is_required_and_nothing_leaks(
    gateway_env: dict[str, str], tmp_path: Path, keys: RSAKeyPair
) -> None:
    env = {
        **gateway_env,
        "SERVICE_AUTH_TOKEN": SERVICE_TOKEN,
        "ARCHON_AUTH_STDIO_TOKEN": STDIO_TOKEN_UNUSED,
        "ARCHON_AUTH_JWT_PUBLIC_KEY": keys.public_key,
        "ARCHON_AUTH_JWT_ISSUER": ISSUER,
        "ARCHON_AUTH_JWT_AUDIENCE": AUDIENCE,
        "ARCHON_AUTH_PROTECT_METRICS": "true",
        "ARCHON_LOG_LEVEL": "debug",
    }
    write_toolbox_manifest(env)
    valid_jwt = keys.create_token(subject="ada", issuer=ISSUER, audience=AUDIENCE)
    expired_jwt = keys.create_token(
        subject="ada", issuer=ISSUER, audience=AUDIENCE, expires_in_seconds=-120
    )
    wrong_audience = keys.create_token(subject="ada", issuer=ISSUER, audience="someone-else")
    wrong_issuer = keys.create_token(subject="ada", issuer="https://evil.test", audience=AUDIENCE)
    other_key = RSAKeyPair.generate().create_token(issuer=ISSUER, audience=AUDIENCE)
    refused: dict[str, tuple[dict[str, str], str]] = {
        "no credentials": ({}, "missing_credentials"),
        "wrong token": ({"X-Service-Auth": "not-the-token-0123456789"}, "invalid_service_token"),
        "empty token": ({"X-Service-Auth": ""}, "invalid_service_token"),
        "very long token": ({"X-Service-Auth": SERVICE_TOKEN * 200}, "invalid_service_token"),
        "token prefix": ({"X-Service-Auth": SERVICE_TOKEN[:-1]}, "invalid_service_token"),
        "token in another header": ({"X-Api-Key": SERVICE_TOKEN}, "missing_credentials"),
        "service token as bearer": (
            {"Authorization": f"Bearer {SERVICE_TOKEN}"},
            "invalid_bearer_token",
        ),
        "basic auth": ({"Authorization": "Basic YWRhOmFkYQ=="}, "unsupported_authorization"),
        "expired jwt": ({"Authorization": f"Bearer {expired_jwt}"}, "invalid_bearer_token"),
        "wrong audience": ({"Authorization": f"Bearer {wrong_audience}"}, "invalid_bearer_token"),
        "wrong issuer": ({"Authorization": f"Bearer {wrong_issuer}"}, "invalid_bearer_token"),
        "other signing key": ({"Authorization": f"Bearer {other_key}"}, "invalid_bearer_token"),
    }
    accepted: dict[str, dict[str, str]] = {
        "service token": {"X-Service-Auth": SERVICE_TOKEN},
        "lowercase header name": {"x-service-auth": SERVICE_TOKEN},
        "uppercase header name": {"X-SERVICE-AUTH": SERVICE_TOKEN},
        "service token beats a bad bearer": {
            "X-Service-Auth": SERVICE_TOKEN,
            "Authorization": "Bearer garbage",
        },
        "valid jwt": {"Authorization": f"Bearer {valid_jwt}"},
    }
    token = {"X-Service-Auth": SERVICE_TOKEN}
    with anyio.fail_after(90):
        async with running_http_gateway(env, tmp_path) as (_, url, stderr_path):
            base = url.removesuffix("/mcp")
            async with httpx.AsyncClient(base_url=base) as web:
                for case, (headers, reason) in refused.items():
                    answer = await post_initialize(web, headers)
                    assert answer.status_code == 401, case
                    assert answer.json()["reason"] == reason, case
                    challenge = answer.headers["www-authenticate"]
                    assert 'X-Service-Auth realm="archon"' in challenge, case
                    assert 'Bearer realm="archon"' in challenge, case
                    assert SERVICE_TOKEN not in answer.text, case
                session_ids = []
                for case, headers in accepted.items():
                    answer = await post_initialize(web, headers)
                    assert answer.status_code == 200, case
                    assert "serverInfo" in answer.text, case
                    session_ids.append(answer.headers["mcp-session-id"])
                # Each accepted initialize opened a stateful session; ending one shows.
                assert await active_http_sessions(web, token) == len(accepted)
                ended = await web.delete(
                    "/mcp", headers={**token, "Mcp-Session-Id": session_ids[0]}
                )
                assert ended.status_code == 200
                assert await active_http_sessions(web, token) == len(accepted) - 1

                # Liveness and readiness stay open; /metrics is protected here.
                assert (await web.get("/health")).status_code == 200
                assert (await web.get("/health/ready")).status_code == 200
                assert (await web.get("/metrics")).status_code == 401
                bypass = await web.get("/metrics", headers={"X-Health-Check-Bypass": "true"})
                assert bypass.status_code == 401  # not allowed by the settings

            # A whole MCP session with the service token; the upstream sees no credential.
            transport = StreamableHttpTransport(url, headers={"X-Service-Auth": SERVICE_TOKEN})
            async with Client(transport) as client:
                info = await client.call_tool("gateway_info", {})
                assert info.structured_content is not None
                upstream_env = (await client.call_tool("toolbox_environment", {})).data
                meta = (await client.call_tool("toolbox_request_meta", {})).data
            async with Client(url, auth=valid_jwt) as user_client:
                assert (await user_client.call_tool("toolbox_echo", {"text": "hi"})).data == "hi"

            async with httpx.AsyncClient(base_url=base) as web:
                metrics_text = (await web.get("/metrics", headers=token)).text

    expected_rejections: dict[str, float] = {}
    for _, reason in refused.values():
        expected_rejections[reason] = expected_rejections.get(reason, 0) + 1
    # /metrics without credentials, and with a bypass header only (not allowed here).
    expected_rejections["missing_credentials"] += 2
    assert rejections(metrics_text) == expected_rejections

    log = stderr_path.read_text()
    audit = [
        json.loads(line.split(" audit ", 1)[1]) for line in log.splitlines() if " audit {" in line
    ]
    rejects = [event for event in audit if event["action"] == "reject"]
    assert len(rejects) == sum(expected_rejections.values())
    assert {"service", "user:ada"} <= {event["principal"] for event in audit}
    secrets = (SERVICE_TOKEN, STDIO_TOKEN_UNUSED, valid_jwt, expired_jwt, wrong_audience)
    upstream_logs = "".join(
        path.read_text() for path in (tmp_path / "data").rglob("*.log") if path.is_file()
    )
    seen_upstream = json.dumps(upstream_env) + json.dumps(meta)
    for secret in secrets:
        for where, text in (
            ("gateway log", log),
            ("metrics", metrics_text),
            ("upstream env/meta", seen_upstream),
            ("upstream logs", upstream_logs),
        ):
            assert secret not in text, f"a credential leaked into the {where}"
    assert "SERVICE_AUTH_TOKEN" not in upstream_env
    assert not any(name.startswith("ARCHON_") for name in upstream_env)


async def test_protected_health_details_and_the_health_check_bypass(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **gateway_env,
        "ARCHON_SERVICE_AUTH_TOKEN": SERVICE_TOKEN,
        "ARCHON_AUTH_PROTECT_METRICS": "true",
        "ARCHON_AUTH_PROTECT_HEALTH_DETAILS": "true",
        "ARCHON_AUTH_ALLOW_HEALTH_CHECK_BYPASS": "true",
    }
    token = {"X-Service-Auth": SERVICE_TOKEN}
    bypass = {"X-Health-Check-Bypass": "true"}
    with anyio.fail_after(60):
        async with (
            running_http_gateway(env, tmp_path) as (_, url, _stderr),
            httpx.AsyncClient(base_url=url.removesuffix("/mcp")) as web,
        ):
            anonymous: dict[str, Any] = (await web.get("/health")).json()
            assert anonymous["status"] == "ok"
            assert "components" not in anonymous
            ready = await web.get("/health?ready=1")
            assert ready.status_code == 200
            assert ready.json()["ready"] is True
            assert "components" not in ready.json()
            detailed = (await web.get("/health/ready", headers=token)).json()
            assert detailed["components"]["breakers"]["status"] == "ok"
            assert detailed["breakers"] == {}
            assert "components" in (await web.get("/health", headers=bypass)).json()

            assert (await web.get("/metrics")).status_code == 401
            assert (await web.get("/metrics", headers=token)).status_code == 200
            assert (await web.get("/metrics", headers=bypass)).status_code == 200
            # The bypass never opens the MCP endpoint.
            assert (await post_initialize(web, bypass)).status_code == 401
            assert (await web.get("/nowhere")).status_code == 401
