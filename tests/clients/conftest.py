from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import npm_installed
from tests.upstreams.conftest import manifests_dir, write_manifest

__all__ = ["client_node", "manifests_dir", "write_manifest"]

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def client_node() -> Path:
    """tests/clients/node: the official TypeScript SDK and the MCP Inspector, installed once
    from its lockfile (≈30 s on a cold npm cache, ≈125 MB; needs the npm registry or its
    cache). Its `sdk_client.mjs` drives the SDK's Client."""
    npm_installed(NODE_DIR, ("mcp-inspector",))
    return NODE_DIR
