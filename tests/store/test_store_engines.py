"""The store on a real SQLite file and a real PostgreSQL server: migrations, the batched
writer, retention. Every test here runs on both engines (the `database_url` fixture)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from sqlalchemy import event, func, select, text

from archon_gateway.store import database
from archon_gateway.store.intervals import ConnectionMetrics, EventMetrics
from archon_gateway.store.retention import DAY, purge
from archon_gateway.store.schema import security_audit_log
from archon_gateway.store.service import Store
from tests.support import wait_until

pytestmark = pytest.mark.anyio


def audit_row(n: int, at: float | None = None) -> dict[str, Any]:
    return {
        "at": time.time() if at is None else at,
        "principal": "service",
        "action": "auth",
        "outcome": "accept",
        "reason": "service_token",
        "tool": "",
        "transport": "http",
        "path": f"/mcp/{n}",
        "remote": "127.0.0.1:1",
        "request_id": "",
    }


async def count_rows(url: str, table: str = "security_audit_log") -> int:
    engine = database.open_engine(database.parse_url(url))
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    finally:
        await engine.dispose()


async def test_appended_rows_are_written_in_batches_and_all_flushed_at_shutdown(
    database_url: str,
) -> None:
    flushed: list[int] = []
    store = Store(
        database_url, batch_size=50, linger=0.01, on_flushed=lambda _t, n: flushed.append(n)
    )
    with anyio.fail_after(60):
        async with store.running():
            for n in range(1234):
                assert store.append("security_audit_log", audit_row(n))
    assert await count_rows(database_url) == 1234
    assert sum(flushed) == 1234
    assert max(flushed) <= 50


async def test_a_full_queue_drops_rows_and_counts_them_without_waiting(database_url: str) -> None:
    dropped: dict[str, int] = {}

    def count(table: str, n: int) -> None:
        dropped[table] = dropped.get(table, 0) + n

    store = Store(database_url, queue_size=10, on_dropped=count)
    with anyio.fail_after(60):
        async with store.running():
            accepted = [store.append("security_audit_log", audit_row(n)) for n in range(25)]
    assert accepted.count(True) == 10
    assert dropped == {"security_audit_log": 15}
    assert await count_rows(database_url) == 10


async def test_two_stores_opening_one_database_at_once_both_end_at_the_newest_schema(
    database_url: str,
) -> None:
    first, second = Store(database_url), Store(database_url)
    with anyio.fail_after(60):
        async with first.running(), second.running():
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first.engine)
                tasks.start_soon(second.engine)
            engine = await first.engine()
            assert await database.current_revision(engine) == database.head_revision()
            # The fast path's constant (a database there opens without Alembic) is the head.
            assert database.head_revision() == database.SCHEMA_REVISION
            assert await database.stored_revision(engine) == database.SCHEMA_REVISION
            assert first.health().status == second.health().status == "ok"


async def test_purge_deletes_only_rows_older_than_the_retention_in_batches(
    database_url: str,
) -> None:
    now = time.time()
    store = Store(database_url, batch_size=500, linger=0.01)
    with anyio.fail_after(60):
        async with store.running():
            for n in range(250):
                store.append("security_audit_log", audit_row(n, at=now - 100 * DAY))
            for n in range(5):
                store.append("security_audit_log", audit_row(n, at=now - DAY))
        engine = database.open_engine(database.parse_url(database_url))
        try:
            retention = {"security_audit_log": 90.0}
            dry = await purge(engine, retention, now=now, batch=100, dry_run=True)
            assert dry == {"security_audit_log": 250}
            assert await purge(engine, retention, now=now, batch=100) == dry
            async with engine.connect() as connection:
                left = await connection.scalar(select(func.count()).select_from(security_audit_log))
            assert left == 5
        finally:
            await engine.dispose()


class SeenConnections:
    """What the store reports of its own database (the ConnectionMetrics interface)."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, str, bool]] = []

    def connected(self, kind: str, target: str, *, ok: bool = True) -> None:
        self.connects.append((kind, target, ok))

    def call(self, kind: str, target: str, seconds: float, *, ok: bool) -> None:
        return None


async def test_an_unreachable_database_is_reported_and_appends_never_wait(tmp_path: Any) -> None:
    # No server listens there; the password must not reach the report.
    url = f"postgresql+asyncpg://nobody:hunter2-canary@/nothing?host={tmp_path}"
    store = Store(url, connect_wait=0.2, shutdown_flush=0.5)
    seen = SeenConnections()
    store.report_connections(seen)
    with anyio.fail_after(30):
        async with store.running():
            assert store.append("security_audit_log", audit_row(1))
            with pytest.raises(Exception, match="store is unavailable"):
                await store.engine()
            status = store.health()
            assert status.status == "down"
            assert "cannot open postgresql" in status.detail
            await wait_until(lambda: bool(seen.connects))
    assert seen.connects[0] == ("database", "postgresql:///nothing", False)


async def test_connection_and_event_metrics_land_as_one_row_per_key_and_interval(
    database_url: str,
) -> None:
    store = Store(database_url, linger=0.01)
    with anyio.fail_after(60):
        async with store.running():
            connections = ConnectionMetrics(store, interval=3600, max_keys=2)
            events = EventMetrics(store, interval=3600)
            async with connections.running(), events.running():
                for seconds, ok in ((0.005, True), (0.05, True), (0.5, False), (2.0, True)):
                    connections.call("upstream", "search", seconds, ok=ok)
                connections.connected("upstream", "search")
                connections.breaker_transition("upstream", "search")
                connections.call("upstream", "files", 0.001, ok=True)
                connections.call("upstream", "third-beyond-the-bound", 0.001, ok=True)
                events.processed("pattern.indexed", "reindex", 0.25)
                events.failed("pattern.indexed", "reindex", 0.75)
                events.retried("pattern.indexed", "reindex")
                events.dead_lettered("pattern.indexed", "reindex")
    found = {
        row["target"]: row
        for row in await table_rows(database_url, "SELECT * FROM connection_metrics")
    }
    assert set(found) == {"search", "files", "_other_"}
    search = found["search"]
    assert (search["calls"], search["errors"], search["connects"]) == (4, 1, 1)
    assert (search["le_10ms"], search["le_100ms"], search["le_1s"], search["gt_1s"]) == (1, 1, 1, 1)
    assert search["latency_max"] == 2.0
    assert search["breaker_transitions"] == 1
    (event,) = await table_rows(database_url, "SELECT * FROM event_metrics")
    assert (event["event_type"], event["handler"]) == ("pattern.indexed", "reindex")
    counts = (event["processed"], event["failed"], event["retried"], event["dead_lettered"])
    assert counts == (1, 1, 1, 1)
    assert event["latency_sum"] == pytest.approx(1.0)


async def table_rows(url: str, query: str) -> list[dict[str, Any]]:
    engine = database.open_engine(database.parse_url(url))
    try:
        async with engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(text(query))]
    finally:
        await engine.dispose()


async def test_the_shipped_migrations_build_exactly_the_schema_the_code_uses(
    database_url: str,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from archon_gateway.store.schema import metadata

    engine = database.open_engine(database.parse_url(database_url))
    try:
        await database.upgrade(engine, wait=30)
        async with engine.connect() as connection:
            drift = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert drift == []


async def test_a_purge_running_at_shutdown_stops_between_statements_and_is_never_cut(
    database_url: str,
) -> None:
    now = time.time()
    async with Store(database_url).running() as filling:
        for n in range(600):
            filling.append("security_audit_log", audit_row(n, at=now - 100 * DAY))
    # One row per statement: the purge is mid-way when the store stops.
    store = Store(database_url, retention_days={"security_audit_log": 90}, purge_batch=1)
    cut: list[str] = []
    with anyio.fail_after(60):
        async with store.running():
            engine = await store.engine()
            # A statement cancelled mid-flight costs its connection (SQLAlchemy invalidates
            # it, and an aiosqlite close left pending can hang the event loop's exit).
            event.listen(engine.sync_engine.pool, "invalidate", lambda *_: cut.append("x"))
            event.listen(engine.sync_engine.pool, "soft_invalidate", lambda *_: cut.append("x"))

            async def purging() -> bool:
                return await count_rows(database_url) < 600

            await wait_until(purging)
    assert cut == []
    assert 0 < await count_rows(database_url) < 600


def test_a_shown_database_url_hides_passwords_in_the_user_part_and_the_query() -> None:
    url = database.parse_url(
        "postgresql+asyncpg://archon:pw-canary@db.local/archon"
        "?host=/run/pg&password=q-canary&sslpassword=s-canary"
    )
    shown = database.shown(url)
    assert "canary" not in shown
    assert shown.startswith("postgresql+asyncpg://archon:***@db.local/archon?")
    assert "host=%2Frun%2Fpg" in shown  # the rest of the query is kept
    assert database.target(url) == "postgresql://db.local/archon"
