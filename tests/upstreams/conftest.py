from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archon_gateway.upstreams.import_config import to_toml
from archon_gateway.upstreams.manifest import Manifest

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"
TOOLBOX = HERE / "toolbox_server.py"
FAULTY = HERE / "faulty_server.py"

WriteManifest = Callable[..., Path]


@pytest.fixture
def manifests_dir(gateway_env: dict[str, str]) -> Path:
    return Path(gateway_env["ARCHON_MANIFESTS_DIR"])


@pytest.fixture
def write_manifest(manifests_dir: Path) -> WriteManifest:
    """Write a manifest file; `toolbox=True` (the default) runs tests/upstreams' server,
    `faulty="crash-on-call"` (modes, comma-separated) runs faulty_server.py instead."""

    def write(
        name: str = "toolbox", *, toolbox: bool = True, faulty: str | None = None, **fields: Any
    ) -> Path:
        if faulty is not None:
            fields = {"command": sys.executable, "args": [str(FAULTY), faulty], **fields}
        elif toolbox:
            fields = {"command": sys.executable, "args": [str(TOOLBOX)], **fields}
        path = manifests_dir / f"{name}.toml"
        path.write_text(to_toml(Manifest(name=name, **fields)))
        return path

    return write


@pytest.fixture(scope="session")
def node_bin() -> Path:
    """Third-party stdio MCP servers from npm, installed once into tests/upstreams/node
    from its lockfile (a few seconds; needs the npm registry or its cache)."""
    bin_dir = NODE_DIR / "node_modules" / ".bin"
    wanted = ("mcp-server-everything", "mcp-server-sequential-thinking")
    # Test workers run side by side: one installs, the others wait for it.
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((bin_dir / name).exists() for name in wanted):
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed; the third-party upstream tests need Node.js")
            command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                pytest.skip(f"npm ci failed in {NODE_DIR}: {done.stderr.strip()[-300:]}")
    return bin_dir


@pytest.fixture
def everything(write_manifest: WriteManifest, node_bin: Path) -> None:
    """A manifest for server-everything (npm) as the upstream `everything`."""
    write_manifest("everything", toolbox=False, command=str(node_bin / "mcp-server-everything"))
