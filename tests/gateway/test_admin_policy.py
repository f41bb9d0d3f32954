"""Admin tools at the real HTTP front door (gateway processes on 127.0.0.1): one rule for
every admin tool, read or write. Without an admin credential they are neither listed nor
callable (directly, on the lane, or through the catalog's meta-tools); the local admin
token, the service token and a JWT with the admin scope open them; the CLI reads the admin
token by itself and, when a gateway refuses it, says so in one line (exit 2)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.auth.providers.jwt import RSAKeyPair

from tests.gateway.test_auth_http import write_toolbox_manifest
from tests.support import admin_headers, gateway_command, running_http_gateway, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

ADMIN_TOOLS = {"gateway_reload", "gateway_restart_upstream", "audit_query", "session_list"}
ARGUMENTS: dict[str, dict[str, Any]] = {"gateway_restart_upstream": {"name": "toolbox"}}
SERVICE_TOKEN = "svc-admin-policy-0123456789-SERVICE"
ISSUER = "https://issuer.archon.test"
AUDIENCE = "archon-gateway"


def client(url: str, headers: dict[str, str] | None = None, **options: Any) -> Client[Any]:
    return Client(StreamableHttpTransport(url, headers=headers or {}), **options)


async def listed(url: str, headers: dict[str, str] | None = None) -> set[str]:
    async with client(url, headers) as session:
        return {tool.name for tool in await session.list_tools()}


def text_of(result: Any) -> str:
    return " ".join(getattr(part, "text", "") for part in result.content)


async def cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    done = await anyio.run_process([gateway_command(), *args], env=env, cwd=cwd, check=False)
    assert done.returncode is not None
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_without_an_admin_credential_admin_tools_are_unlisted_and_refused_in_one_line(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**gateway_env, "ARCHON_LOG_LEVEL": "debug"}
    write_toolbox_manifest(env)
    token_file = Path(env["ARCHON_DATA_DIR"]) / "admin-token"
    with anyio.fail_after(90):
        async with running_http_gateway(env, tmp_path) as (_, url, stderr):
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            token = token_file.read_text().strip()
            names = await listed(url)
            assert not names & ADMIN_TOOLS
            assert {"gateway_info", "toolbox_echo"} <= names

            # Both protocol eras (the lane serves these plain native tools in both).
            for mode in ("auto", "legacy"):
                async with client(url, mode=mode) as anonymous:
                    for tool in sorted(ADMIN_TOOLS):
                        result = await anonymous.call_tool(
                            tool, ARGUMENTS.get(tool, {}), raise_on_error=False
                        )
                        said = text_of(result)
                        assert result.is_error, (mode, tool)
                        assert said.startswith(f"{tool} is an admin tool: over HTTP"), said
                        assert "SERVICE_AUTH_TOKEN" in said
                        assert str(token_file) in said
                        assert "\n" not in said
                        assert token not in said
                    # The next request is served.
                    info = await anonymous.call_tool("gateway_info", {})
                    assert info.structured_content is not None
                    # A gateway-admin event is an admin action too: not published.
                    trip = {
                        "event_type": "gateway.breaker.open.requested",
                        "payload": {"breaker": "upstream toolbox"},
                    }
                    published = await anonymous.call_tool(
                        "events_publish", trip, raise_on_error=False
                    )
                    assert published.is_error
                    assert "'gateway.breaker.open.requested' is an admin event" in text_of(
                        published
                    )
                    echoed = await anonymous.call_tool("toolbox_echo", {"text": "still up"})
                    assert echoed.data == "still up"

            # The admin token, as X-Service-Auth or as a bearer token, opens every one.
            assert await listed(url, admin_headers(env)) >= ADMIN_TOOLS
            assert await listed(url, {"Authorization": f"Bearer {token}"}) >= ADMIN_TOOLS
            async with client(url, admin_headers(env)) as admin:
                reload = await admin.call_tool("gateway_reload", {})
                assert reload.structured_content is not None
                assert reload.structured_content["applied"] is True
                restart = await admin.call_tool("gateway_restart_upstream", {"name": "toolbox"})
                assert restart.structured_content is not None
                assert restart.structured_content["state"] == "ready"

                async def reloads() -> list[dict[str, Any]]:
                    page = await admin.call_tool("audit_query", {"action": "config_reload"})
                    assert page.structured_content is not None
                    return list(page.structured_content["rows"])

                async def audited() -> bool:
                    return bool(await reloads())

                await wait_until(audited)  # the store writes in batches
                assert {row["principal"] for row in await reloads()} == {"admin"}

            # The CLI of the same user (same data dir) needs no set-up; another one is told
            # what it needs in one line, exit 2.
            code, _out, err = await cli(env, tmp_path, "reload", "--url", url)
            assert code == 0, err
            elsewhere = {**env, "ARCHON_DATA_DIR": str(tmp_path / "elsewhere")}
            code, _out, err = await cli(elsewhere, tmp_path, "reload", "--url", url)
            assert code == 2
            assert err.count("\n") == 1
            assert "SERVICE_AUTH_TOKEN" in err
            assert str(tmp_path / "elsewhere" / "admin-token") in err
            assert "Traceback" not in err
    logged = stderr.read_text()
    assert token not in logged
    assert '"reason": "admin_required"' in logged  # each refusal is an audit event


async def test_the_catalog_meta_tools_neither_reveal_nor_call_admin_tools_without_the_token(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**gateway_env, "ARCHON_CATALOG_MODE": "menu"}
    query = {"query": "reload configuration restart upstream audit trail sessions", "top_k": 50}
    with anyio.fail_after(90):
        async with running_http_gateway(env, tmp_path) as (_, url, _stderr):
            async with client(url) as anonymous:
                found = await anonymous.call_tool("archon_search_tools", query)
                assert found.structured_content is not None
                hits = {hit["name"] for hit in found.structured_content["results"]}
                assert hits
                assert not hits & ADMIN_TOOLS
                described = await anonymous.call_tool(
                    "archon_describe_tool", {"name": "audit_query"}, raise_on_error=False
                )
                assert described.is_error
                called = await anonymous.call_tool(
                    "archon_call_tool", {"name": "gateway_reload"}, raise_on_error=False
                )
                assert called.is_error
                assert "unknown tool 'gateway_reload'" in text_of(called)
            async with client(url, admin_headers(env)) as admin:
                found = await admin.call_tool("archon_search_tools", query)
                assert found.structured_content is not None
                hits = {hit["name"] for hit in found.structured_content["results"]}
                assert "gateway_reload" in hits
                called = await admin.call_tool("archon_call_tool", {"name": "gateway_reload"})
                assert not called.is_error


async def test_a_service_token_or_an_admin_scoped_jwt_is_an_admin_and_a_plain_jwt_is_not(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    keys = RSAKeyPair.generate()
    env = {
        **gateway_env,
        "SERVICE_AUTH_TOKEN": SERVICE_TOKEN,
        "ARCHON_AUTH_JWT_PUBLIC_KEY": keys.public_key,
        "ARCHON_AUTH_JWT_ISSUER": ISSUER,
        "ARCHON_AUTH_JWT_AUDIENCE": AUDIENCE,
    }
    plain = keys.create_token(subject="bo", issuer=ISSUER, audience=AUDIENCE, scopes=["read"])
    scoped = keys.create_token(
        subject="ada", issuer=ISSUER, audience=AUDIENCE, scopes=["read", "archon:admin"]
    )
    with anyio.fail_after(90):
        async with running_http_gateway(env, tmp_path) as (_, url, _stderr):
            user = {"Authorization": f"Bearer {plain}"}
            assert not await listed(url, user) & ADMIN_TOOLS
            async with client(url, user) as session:
                refused = await session.call_tool("gateway_reload", {}, raise_on_error=False)
                assert refused.is_error
                assert "'archon:admin' scope" in text_of(refused)
            for headers in (
                {"Authorization": f"Bearer {scoped}"},
                {"X-Service-Auth": SERVICE_TOKEN},
                admin_headers(env),  # the local admin token works whatever the auth mode
            ):
                assert ADMIN_TOOLS - {"gateway_restart_upstream"} <= await listed(url, headers)
                async with client(url, headers) as admin:
                    assert not (await admin.call_tool("gateway_reload", {})).is_error


async def test_the_cli_against_a_gateway_that_refuses_it_says_what_it_needs_in_one_line(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**gateway_env, "SERVICE_AUTH_TOKEN": SERVICE_TOKEN}
    stranger = {**gateway_env, "ARCHON_DATA_DIR": str(tmp_path / "stranger")}
    with anyio.fail_after(90):
        async with running_http_gateway(env, tmp_path) as (_, url, _stderr):
            for command in (
                ("reload", "--url", url),
                ("restart-upstream", "toolbox", "--url", url),
                ("list", "--url", url),
            ):
                code, _out, err = await cli(stranger, tmp_path, *command)
                assert code == 2, command
                assert err.count("\n") == 1, err
                assert "refused this admin command" in err
                assert "SERVICE_AUTH_TOKEN" in err
                assert str(tmp_path / "stranger" / "admin-token") in err
                assert SERVICE_TOKEN not in err
            # With the service token it works; so it does with the gateway's own data dir.
            code, _out, err = await cli(
                {**stranger, "SERVICE_AUTH_TOKEN": SERVICE_TOKEN}, tmp_path, "reload", "--url", url
            )
            assert code == 0, err
            code, _out, err = await cli(gateway_env, tmp_path, "reload", "--url", url)
            assert code == 0, err
