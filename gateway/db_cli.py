"""`archon-gateway db upgrade|current|history|purge`: the store's schema and retention by
hand (a running gateway does the same on its own)."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

from cyclopts import App, Parameter

from archon_gateway.core.errors import GatewayError, SettingsInvalid
from archon_gateway.gateway.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

db_app = App(name="db", help="The store's database: schema migrations and retention.")

Config = Annotated[Path | None, Parameter(help="TOML config file [default: ./archon.toml]")]
T = TypeVar("T")


@db_app.command
def upgrade(*, config: Config = None) -> None:
    """Bring the database to the newest schema (waits for another gateway migrating it)."""
    from archon_gateway.store import database

    settings = _settings(config)

    async def run(engine: AsyncEngine) -> str | None:
        return await database.upgrade(engine, wait=settings.store_migration_wait)

    revision = _with_engine(settings, run)
    print(f"{_shown(settings)}: at revision {revision} (newest {database.head_revision()})")


@db_app.command
def current(*, config: Config = None) -> None:
    """The database's schema revision and the newest this gateway knows. Exit 1 if behind."""
    from archon_gateway.store import database

    settings = _settings(config)
    revision = _with_engine(settings, database.current_revision)
    head = database.head_revision()
    print(f"{_shown(settings)}: at revision {revision or 'none'} (newest {head})")
    if revision != head:
        raise SystemExit(1)


@db_app.command
def history() -> None:
    """The schema revisions shipped with this gateway, newest first."""
    from archon_gateway.store import database

    for revision, down, message in database.history():
        print(f"{down or '<base>'} -> {revision}: {message.strip().splitlines()[0]}")


@db_app.command
def purge(
    *,
    config: Config = None,
    dry_run: Annotated[
        bool, Parameter(name="--dry-run", negative="", help="count, delete nothing")
    ] = False,
) -> None:
    """Delete rows older than each table's retention (store_retention_days)."""
    from archon_gateway.store import database, retention

    settings = _settings(config)
    days = {str(table): value for table, value in settings.store_retention_days.items()}

    async def run(engine: AsyncEngine) -> dict[str, int]:
        await database.upgrade(engine, wait=settings.store_migration_wait)
        return await retention.purge(
            engine, days, now=time.time(), batch=settings.store_purge_batch, dry_run=dry_run
        )

    removed = _with_engine(settings, run)
    verb = "would delete" if dry_run else "deleted"
    for table, count in removed.items():
        print(f"{table}: {verb} {count} rows older than {days[table]:g} days")


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)


def _url(settings: Settings) -> str:
    from archon_gateway.gateway.store_wiring import database_url

    return database_url(settings)


def _shown(settings: Settings) -> str:
    from archon_gateway.store import database

    return database.shown(database.parse_url(_url(settings)))


def _with_engine(settings: Settings, run: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    import anyio

    from archon_gateway.store import database

    async def main() -> T:
        engine = database.open_engine(database.parse_url(_url(settings)))
        try:
            return await run(engine)
        except GatewayError:
            raise
        except Exception as exc:
            raise GatewayError(
                f"cannot use {database.shown(engine.url)}: {database.one_line(exc)}"
            ) from exc
        finally:
            await engine.dispose()

    try:
        return anyio.run(main)
    except GatewayError as exc:
        _fail(str(exc), 1)


def _fail(message: str, code: int) -> NoReturn:
    print(f"archon-gateway: error: {message}", file=sys.stderr)
    raise SystemExit(code)
