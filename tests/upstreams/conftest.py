from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.manifest_writer import to_toml
from tests.support import npm_installed

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
    return npm_installed(NODE_DIR, ("mcp-server-everything", "mcp-server-sequential-thinking"))


@pytest.fixture
def everything(write_manifest: WriteManifest, node_bin: Path) -> None:
    """A manifest for server-everything (npm) as the upstream `everything`."""
    write_manifest("everything", toolbox=False, command=str(node_bin / "mcp-server-everything"))
