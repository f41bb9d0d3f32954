"""Retention: rows older than each table's limit are deleted in small batches, so a purge
never holds a long lock on a busy database."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from archon_gateway.store.schema import TIME_COLUMNS, metadata

DAY = 86_400.0


async def purge(
    engine: AsyncEngine,
    retention_days: Mapping[str, float],
    *,
    now: float,
    batch: int = 1000,
    dry_run: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """Delete (or, dry, count) rows older than each table's retention; rows per table.
    `stop()` true ends the purge between statements (at shutdown)."""
    removed: dict[str, int] = {}
    for name, days in sorted(retention_days.items()):
        if stop():
            break
        table = metadata.tables[name]
        column = table.c[TIME_COLUMNS[name]]
        cutoff = now - days * DAY
        if dry_run:
            async with engine.connect() as connection:
                count = await connection.scalar(
                    select(func.count()).select_from(table).where(column < cutoff)
                )
            removed[name] = int(count or 0)
            continue
        total = 0
        while True:
            oldest = select(table.c.id).where(column < cutoff).limit(batch).scalar_subquery()
            async with engine.begin() as connection:
                result = await connection.execute(delete(table).where(table.c.id.in_(oldest)))
            total += result.rowcount
            if result.rowcount < batch or stop():
                break
        removed[name] = total
    return removed
