"""A canary service token and a canary tool-argument secret never show up in any log (at
debug level), error, metric, health body, or an upstream's environment; a list of accepted
tokens lets the token rotate without downtime."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.support import running_gateway, wait_for_text, wait_until
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

TOKEN = "canary-token-7f3a9c2e5b1d"
NEXT_TOKEN = "canary-next-token-0a1b2c3d"
SECRET = "canary-argument-secret-d41d8cd9"


async def test_canaries_never_leak_and_both_rotation_tokens_are_accepted(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    log_file = tmp_path / "gateway.log"
    starts = tmp_path / "starts"
    gateway_env |= {
        "SERVICE_AUTH_TOKEN": TOKEN,
        "ARCHON_SERVICE_AUTH_EXTRA_TOKENS": f'["{NEXT_TOKEN}"]',
        "ARCHON_LOG_LEVEL": "debug",
        "ARCHON_LOG_FILE": str(log_file),
    }
    write_manifest("echoer", faulty="", env={"FAULTY_STARTS_FILE": str(starts)})
    seen: list[str] = []
    args = ("--transport", "http", "--port", "0")
    async with running_gateway(gateway_env, tmp_path, *args, stdin=subprocess.DEVNULL) as (
        _process,
        stderr,
    ):
        url = (await wait_for_text(log_file, r"streamable HTTP at (http://\S+/mcp)")).group(1)
        base = url.removesuffix("/mcp")
        with anyio.fail_after(60):
            for token in (TOKEN, NEXT_TOKEN):
                transport = StreamableHttpTransport(url, headers={"X-Service-Auth": token})
                async with Client(transport) as client:
                    echoed = await client.call_tool("echoer_echo", {"text": SECRET})
                    assert not echoed.is_error
                    for name, arguments in (
                        ("code_analyze", {"code": SECRET, "language": SECRET}),
                        ("no_such_tool", {"secret": SECRET}),
                    ):
                        bad = await client.call_tool(name, arguments, raise_on_error=False)
                        seen.append(str(bad.content))
            async with httpx.AsyncClient(timeout=10) as web:
                query = await web.post(f"{url}?X-Service-Auth={TOKEN}&token={TOKEN}", json={})
                seen.append(query.text)
                headers = {"X-Service-Auth": TOKEN}
                seen.append((await web.get(base + "/metrics", headers=headers)).text)
                seen.append((await web.get(base + "/health", headers=headers)).text)
            await wait_until(lambda: starts.exists() and starts.read_text().strip() != "")
            upstream_pid = int(starts.read_text().split()[0])
            environ = (await anyio.Path(f"/proc/{upstream_pid}/environ").read_bytes()).decode(
                errors="replace"
            )
    logs = [log_file.read_text(errors="replace"), stderr.read_text(errors="replace")]
    logs += [p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*.log")]
    assert "call_tool" in logs[0]  # debug logging was on
    for canary in (TOKEN, NEXT_TOKEN, SECRET):
        for where, text in (("logs", "\n".join(logs)), ("answers", "\n".join(seen))):
            assert canary not in text, f"{canary} leaked into {where}"
        assert canary not in environ
