from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.import_root import refuse_bare_folder_imports
from tests.support import refusing_port

# pytest puts the repository root on sys.path, where `gateway`, `tools`, `upstreams` and
# `manifests` would import as top-level modules that an installed gateway does not have.
refuse_bare_folder_imports()

# Seconds a test marked `processes` may take, set-up and teardown included, unless it sets
# its own `timeout` mark: a hung process then fails that test by name instead of hanging CI.
PROCESS_TEST_TIMEOUT = 180
# Fixtures that start processes (a gateway process or upstreams); tests using them must
# carry the `processes` mark.
PROCESS_FIXTURES = frozenset(
    {
        "gateway_env",
        "write_manifest",
        "node_bin",
        "client_node",
        "conformance_suite",
        "standin_url",
        "kafka_broker",
        "own_broker",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = []
    for item in items:
        if item.get_closest_marker("processes") is None:
            if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
                unmarked.append(item.nodeid)
            continue
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PROCESS_TEST_TIMEOUT))
    if unmarked:
        listed = "\n  ".join(unmarked)
        raise pytest.UsageError(
            f"these tests start processes but are not marked `processes`:\n  {listed}"
        )


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


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the whole test; unlike a port bound
    and released, no process running beside the test can take it meanwhile."""
    with refusing_port() as port:
        yield port
