"""Reading the audit trail and the session log (the admin tools)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from archon_gateway.store.models import AuditRow, SessionRow
from archon_gateway.store.schema import security_audit_log as audit
from archon_gateway.store.schema import service_sessions as sessions


async def audit_rows(
    engine: AsyncEngine,
    *,
    since: float | None,
    until: float | None,
    principal: str | None,
    action: str | None,
    outcome: str | None,
    limit: int,
) -> list[AuditRow]:
    query = select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(audit.c.at >= since)
    if until is not None:
        query = query.where(audit.c.at < until)
    for column, value in ((audit.c.principal, principal), (audit.c.action, action)):
        if value is not None:
            query = query.where(column == value)
    if outcome is not None:
        query = query.where(audit.c.outcome == outcome)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [AuditRow.model_validate(dict(row._mapping)) for row in rows]


async def session_rows(engine: AsyncEngine, *, active: bool | None, limit: int) -> list[SessionRow]:
    query = select(sessions).order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
    if active is True:
        query = query.where(sessions.c.ended_at.is_(None))
    elif active is False:
        query = query.where(sessions.c.ended_at.is_not(None))
    async with engine.connect() as connection:
        rows = (await connection.execute(query.limit(limit))).all()
    return [SessionRow.model_validate(dict(row._mapping)) for row in rows]
