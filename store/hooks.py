"""Webhook deliveries in `hook_events`: stored once per (source, delivery id), and their
status once the gateway acted on them."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from archon_gateway.store.schema import hook_events


async def record_delivery(
    engine: AsyncEngine,
    *,
    source: str,
    delivery_id: str,
    event: str,
    body: str,
    action: str,
    now: float,
) -> bool:
    """Store a delivery; False when this (source, delivery id) was stored before."""
    try:
        async with engine.begin() as connection:
            await connection.execute(
                hook_events.insert().values(
                    source=source,
                    delivery_id=delivery_id,
                    event=event,
                    received_at=now,
                    status="received" if action else "ignored",
                    action=action,
                    detail="",
                    body=body,
                )
            )
    except IntegrityError:
        return False
    return True


async def set_status(
    engine: AsyncEngine, *, source: str, delivery_id: str, status: str, detail: str
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(hook_events)
            .where(hook_events.c.source == source, hook_events.c.delivery_id == delivery_id)
            .values(status=status, detail=detail[:500])
        )
