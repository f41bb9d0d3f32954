from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gateway_env(tmp_path: Path) -> dict[str, str]:
    """The test's environment minus any ARCHON_* settings, with a private data dir."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ARCHON_") and key != "SERVICE_AUTH_TOKEN"
    }
    env["ARCHON_DATA_DIR"] = str(tmp_path / "data")
    # No upstreams unless a test writes manifests here: the host's PATH must not matter.
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    env["ARCHON_MANIFESTS_DIR"] = str(manifests)
    return env
