"""The running store: opens the database in the background when it is first needed (a row
to write or a tool that reads), so neither SQLAlchemy's import nor a migration delays the
gateway's first answer; runs the batched writer and the periodic purge; reports its health.

Tools that read or write directly (`engine()`) wait a bounded time for the database and get
`Unavailable` when it cannot be reached; appended rows never wait (see `writer`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from archon_gateway.core.errors import SettingsInvalid, Unavailable
from archon_gateway.core.health import ComponentStatus
from archon_gateway.store.writer import Append, BatchWriter, Counted, Op, Update, count_by_table

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


def _noop(_table: str, _count: int) -> None:
    return None


class ConnectionReport(Protocol):
    """Where the store reports its own database connection (`ConnectionMetrics`)."""

    def connected(self, kind: str, target: str, *, ok: bool = True) -> None: ...

    def call(self, kind: str, target: str, seconds: float, *, ok: bool) -> None: ...


class _NoReport:
    def connected(self, kind: str, target: str, *, ok: bool = True) -> None:
        return None

    def call(self, kind: str, target: str, seconds: float, *, ok: bool) -> None:
        return None


class Store:
    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        linger: float = 0.2,
        shutdown_flush: float = 5.0,
        migrate_wait: float = 60.0,
        retention_days: Mapping[str, float] | None = None,
        purge_interval: float = 3600.0,
        purge_batch: int = 1000,
        connect_wait: float = 5.0,
        on_dropped: Counted = _noop,
        on_flushed: Counted = _noop,
    ) -> None:
        self.url = url
        self.shutdown_flush = shutdown_flush
        self.migrate_wait = migrate_wait
        self.retention_days = dict(retention_days or {})
        self.purge_interval = purge_interval
        self.purge_batch = purge_batch
        self.connect_wait = connect_wait
        self.writer = BatchWriter(
            capacity=queue_size,
            batch_size=batch_size,
            linger=linger,
            on_dropped=on_dropped,
            on_flushed=on_flushed,
        )
        self._engine: AsyncEngine | None = None
        self._ready = anyio.Event()
        self._writer_done = anyio.Event()
        self._needed = anyio.Event()
        self._stopping = anyio.Event()
        self._status = ComponentStatus("ok", "opens on first use")
        self._shown_url = url.split("://", 1)[0] + "://..."
        self._report: ConnectionReport = _NoReport()
        self._target = ""

    def report_connections(self, report: ConnectionReport) -> None:
        """Opening the database (connects, failures) and each batch written (calls,
        latency) are reported as kind "database", target the URL without credentials."""
        self._report = report

    # --- writing without waiting ----------------------------------------------------------

    def append(self, table: str, row: Mapping[str, Any]) -> bool:
        self._needed.set()
        return self.writer.submit(Append(table, row))

    def update(self, table: str, key: str, key_value: Any, values: Mapping[str, Any]) -> bool:
        self._needed.set()
        return self.writer.submit(Update(table, key, key_value, values))

    # --- reading and direct writes ----------------------------------------------------------

    async def engine(self) -> AsyncEngine:
        """The open engine; waits up to `connect_wait` for the database to open."""
        self._needed.set()
        if self._engine is None:
            with anyio.move_on_after(self.connect_wait):
                await self._ready.wait()
        if self._engine is None:
            raise Unavailable(f"the store is unavailable ({self._status.detail})")
        return self._engine

    def health(self) -> ComponentStatus:
        return self._status

    @property
    def ready(self) -> bool:
        return self._engine is not None

    # --- lifetime ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Store]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._open_then_write)
            try:
                yield self
            finally:
                self._stopping.set()
                self.writer.close()
                with anyio.CancelScope(shield=True):
                    # Wait for the writer to drain and the purge to finish its statement
                    # (still opening counts: it may open in time): cancelling a statement
                    # mid-flight leaves SQLAlchemy a connection close that can outlive us.
                    if self.writer.pending or self._engine is not None:
                        with anyio.move_on_after(self.shutdown_flush):
                            await self._writer_done.wait()
                    left = self.writer.discard()
                    if left:
                        log.warning(
                            "store: %d rows not written within %g s of shutdown",
                            left,
                            self.shutdown_flush,
                        )
                    tasks.cancel_scope.cancel()
                    if self._engine is not None:
                        await self._engine.dispose()

    async def _open_then_write(self) -> None:
        try:
            await self._needed.wait()
            self._status = ComponentStatus("ok", "opening")  # not a fault: it may take a moment
            engine = await self._open()
            async with anyio.create_task_group() as tasks:
                if self.retention_days:
                    tasks.start_soon(self._purge_periodically, engine)
                await self.writer.run(
                    lambda batch: self._timed_flush(engine, batch),
                    on_error=self._write_failed,
                    on_ok=self._write_ok,
                )
                # Closed and drained: the purge stops after its current statement.
        finally:
            self._writer_done.set()

    async def _open(self) -> AsyncEngine:
        # SQLAlchemy and Alembic load (and migrations run) in a worker thread: an import of
        # a few hundred ms on the event loop would stall every call and upstream ping.
        await anyio.to_thread.run_sync(importlib.import_module, "archon_gateway.store.database")
        from archon_gateway.store import database  # loaded above: no cost here

        try:
            url = database.parse_url(self.url)
        except SettingsInvalid as exc:
            self._status = ComponentStatus("down", str(exc))
            await anyio.sleep_forever()
        self._shown_url = database.describe(url)
        self._target = database.target(url)
        delay = 0.25
        while True:
            engine = database.open_engine(url)
            try:
                revision = await anyio.to_thread.run_sync(
                    database.upgrade_in_thread, self.url, self.migrate_wait, abandon_on_cancel=True
                )
            except Exception as exc:
                await engine.dispose()
                self._report.connected("database", self._target, ok=False)
                self._status = ComponentStatus(
                    "down", f"cannot open {self._shown_url}: {database.one_line(exc)}"
                )
                log.warning("store: %s (retrying in %g s)", self._status.detail, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 15.0)
                continue
            log.info("store: %s at schema revision %s", self._shown_url, revision)
            self._report.connected("database", self._target)
            self._engine = engine
            self._status = ComponentStatus("ok", self._shown_url)
            self._ready.set()
            return engine

    async def _timed_flush(self, engine: AsyncEngine, batch: Sequence[Op]) -> None:
        started = time.perf_counter()
        ok = False
        try:
            await self._flush(engine, batch)
            ok = True
        finally:
            self._report.call("database", self._target, time.perf_counter() - started, ok=ok)

    async def _flush(self, engine: AsyncEngine, batch: Sequence[Op]) -> None:
        from sqlalchemy import insert, update

        from archon_gateway.store.schema import metadata

        appends: dict[str, list[Mapping[str, Any]]] = {}
        async with engine.begin() as connection:
            for op in batch:
                if isinstance(op, Append):
                    appends.setdefault(op.table, []).append(op.row)
            for table, rows in appends.items():
                await connection.execute(insert(metadata.tables[table]), list(rows))
            for op in batch:
                if isinstance(op, Update):
                    target = metadata.tables[op.table]
                    await connection.execute(
                        update(target)
                        .where(target.c[op.key] == op.key_value)
                        .values(dict(op.values))
                    )

    def _write_failed(self, exc: BaseException) -> None:
        from archon_gateway.store.database import one_line

        self._status = ComponentStatus(
            "down", f"cannot write to {self._shown_url}: {one_line(exc)}"
        )
        log.warning("store: %s (%d rows waiting)", self._status.detail, self.writer.pending)

    def _write_ok(self) -> None:
        if self._status.status != "ok":
            self._status = ComponentStatus("ok", self._shown_url)

    async def _purge_periodically(self, engine: AsyncEngine) -> None:
        from archon_gateway.store.database import one_line
        from archon_gateway.store.retention import purge

        while not self._stopping.is_set():
            try:
                removed = await purge(
                    engine,
                    self.retention_days,
                    now=time.time(),
                    batch=self.purge_batch,
                    stop=self._stopping.is_set,
                )
                if any(removed.values()):
                    log.info("store: purged %s", removed)
            except Exception as exc:
                log.warning("store: purge failed: %s", one_line(exc))
            with anyio.move_on_after(self.purge_interval):
                await self._stopping.wait()


__all__ = ["Store", "count_by_table"]
