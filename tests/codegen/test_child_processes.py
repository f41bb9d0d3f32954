"""The code tools' child processes (worker processes, ruff) get the allow-listed
environment, never the gateway's secrets: read from the real children's
/proc/<pid>/environ."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from archon_gateway.core.health import ComponentRegistry
from archon_gateway.gateway.app import add_tool_families
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.tools.codegen import CodegenTools
from archon_gateway.tools.codegen.ruff import Ruff
from archon_gateway.tools.codegen.rules import RuleSet

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.processes,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc"),
]

SECRETS = {
    "SERVICE_AUTH_TOKEN": "svc-token-7d1e",
    "ARCHON_HOOK_SECRETS": '{"github": "hook-secret-51c0"}',
    "ARCHON_SERVICE_TOKENS": '{"ci": "bound-token-a93f"}',
}


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.decode().partition("=") for entry in raw.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


def code_workers() -> list[int]:
    """This process's children that run the code tools' job loop."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == os.getpid() and b"serve_jobs" in command:
            found.append(int(entry.name))
    return found


def assert_allow_listed(env: dict[str, str]) -> None:
    assert not set(SECRETS) & set(env), sorted(env)
    assert not any(name.startswith("ARCHON_") for name in env), sorted(env)
    joined = "\n".join(env.values())
    for secret in ("svc-token-7d1e", "hook-secret-51c0", "bound-token-a93f"):
        assert secret not in joined
    assert env["PATH"] == os.environ["PATH"]


async def test_code_worker_processes_get_the_allow_listed_environment_not_the_gateways_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    server = GatewayServer("codegen")
    add_tool_families(server, ComponentRegistry(), [CodegenTools(offload_bytes=1)])
    with anyio.fail_after(60):
        async with Client(server) as client:
            result: Any = await client.call_tool(
                "code_analyze", {"code": "def f(x: int) -> int:\n    return x\n"}
            )
            assert result.structured_content["functions"]
            workers = code_workers()
            assert len(workers) == 1  # it ran in a worker, which waits for the next job
            assert_allow_listed(environ_of(workers[0]))
    assert code_workers() == []  # stopped with the server


async def test_ruff_gets_the_allow_listed_environment_not_the_gateways_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    seen = tmp_path / "environ"
    # Stands in for the ruff binary: keeps its own /proc/self/environ, reports no findings.
    stand_in = tmp_path / "ruff"
    stand_in.write_text(
        f"#!{sys.executable}\n"
        f"import shutil; shutil.copyfile('/proc/self/environ', {str(seen)!r}); print('[]')\n"
    )
    stand_in.chmod(0o755)
    ruff = Ruff(binary=str(stand_in))
    with anyio.fail_after(30):
        findings = await ruff.findings("x = 1\n", RuleSet.build(None, None), "module.py")
    assert findings == []
    raw = seen.read_bytes()
    env = dict(entry.decode().partition("=")[::2] for entry in raw.split(b"\0") if entry)
    assert_allow_listed(env)
