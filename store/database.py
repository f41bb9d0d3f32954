"""Opening the database: the engine for either backend, and migrations that a second
gateway waits for instead of racing.

SQLite gets WAL, `synchronous=NORMAL` and a busy timeout on every connection; concurrent
gateways on one SQLite file serialise their migrations with a lock file beside it.
PostgreSQL gateways serialise theirs with a session advisory lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from archon_gateway.core.errors import SettingsInvalid, Unavailable

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant shared by every gateway: the key of PostgreSQL's migration lock.
_PG_MIGRATION_LOCK = 0x41524348  # "ARCH"
# The newest shipped migration. A database already there opens without loading Alembic
# (a few hundred ms of imports a short-lived gateway would otherwise wait for at exit);
# tests check it is Alembic's head.
SCHEMA_REVISION = "0001"
SQLITE_BUSY_MS = 5000


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'archon.db'}"


def parse_url(url: str) -> URL:
    """A database URL the store supports; SettingsInvalid otherwise (never showing a
    password)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise SettingsInvalid("database_url is not a database URL") from exc
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsInvalid(
            f"database_url driver {parsed.drivername!r} is not supported "
            "(use sqlite+aiosqlite:///<file> or postgresql+asyncpg://...)"
        )
    return parsed


def shown(url: URL) -> str:
    """The URL as logs and health may show it: no password, in the user part or in the
    query (asyncpg takes `?password=`, `?sslpassword=`, ...)."""
    hidden = {key: "***" for key in url.query if _secret_key(key)}
    return url.update_query_dict(hidden).render_as_string(hide_password=True)


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in ("password", "secret", "token", "key"))


def open_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, *, wait: float) -> str | None:
    """Bring the schema to the newest revision; a second gateway doing the same waits up to
    `wait` seconds for the first, then finds nothing left to do. Returns the revision."""
    async with _migration_lock(engine, wait) as connection:
        await connection.run_sync(_upgrade_sync)
        await connection.commit()
        return await connection.run_sync(_current_sync)


def upgrade_in_thread(url: str, wait: float) -> str | None:
    """`upgrade` on its own engine and event loop, for a worker thread: Alembic's work
    (loading scripts, running DDL through the greenlet bridge) then never holds the
    gateway's event loop."""

    async def run() -> str | None:
        engine = open_engine(parse_url(url))
        try:
            if await stored_revision(engine) == SCHEMA_REVISION:
                return SCHEMA_REVISION
            return await upgrade(engine, wait=wait)
        finally:
            await engine.dispose()

    return anyio.run(run)


async def stored_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision read with plain SQL (None: not migrated yet)."""
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # no such table yet (or unreadable): the migration path decides
        return None
    return None if found is None else str(found)


def _upgrade_sync(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def _current_sync(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_sync)


def history() -> list[tuple[str, str | None, str]]:
    """(revision, down revision, message), newest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return [
        (str(script.revision), _one(script.down_revision), script.doc or "")
        for script in scripts.walk_revisions()
    ]


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _one(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(str(item) for item in value)


@contextlib.asynccontextmanager
async def _migration_lock(engine: AsyncEngine, wait: float) -> AsyncIterator[AsyncConnection]:
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await _pg_lock(connection, wait)
            try:
                yield connection
            finally:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
                await connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        async with engine.connect() as connection:
            yield connection
        return
    with await _file_lock(Path(database + ".migrate-lock"), wait):
        async with engine.connect() as connection:
            yield connection


async def _pg_lock(connection: AsyncConnection, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        got = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
        )
        await connection.commit()
        if got:
            return
        if time.monotonic() >= deadline:
            raise Unavailable(f"another gateway held the migration lock for over {wait:g} s")
        await anyio.sleep(0.05)


class _FileLock:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


async def _file_lock(path: Path, wait: float) -> _FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return _FileLock(handle)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"another gateway held the migration lock {path} for over {wait:g} s"
                    ) from None
                await anyio.sleep(0.05)
    except BaseException:
        handle.close()
        raise


def one_line(exc: BaseException) -> str:
    """A database error as one line, without the SQL or parameters it carried."""
    original = getattr(exc, "orig", None) or exc
    text_ = str(original).splitlines()[0] if str(original) else type(original).__name__
    return f"{type(original).__name__}: {text_}"[:300]


def target(url: URL) -> str:
    """The database as a metrics row names it: engine, host and database, never a user,
    password or query (a query may carry a password)."""
    return f"{url.get_backend_name()}://{url.host or ''}/{url.database or ''}"[:200]


def describe(url: URL) -> str:
    return f"{url.get_backend_name()} {shown(url)}"


Clock = Callable[[], float]
