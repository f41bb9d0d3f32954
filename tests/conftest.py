from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.import_root import refuse_bare_folder_imports

# pytest puts the repository root on sys.path, where `gateway`, `tools`, `upstreams` and
# `manifests` would import as top-level modules that an installed gateway does not have.
refuse_bare_folder_imports()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_host_upstreams(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gateways built in-process see no upstream manifests unless a test passes its own:
    whether an upstream's command (pal-mcp-server from the dev extras, say) happens to be on
    this machine's PATH must not change what a test sees."""
    empty = tmp_path_factory.mktemp("no-manifests")
    monkeypatch.setenv("ARCHON_MANIFESTS_DIR", str(empty))


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
