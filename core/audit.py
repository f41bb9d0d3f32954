"""Audit of auth decisions: one event per decision, never holding a credential."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

audit_log = logging.getLogger("archon_gateway.audit")


@dataclass(frozen=True)
class AuditEvent:
    """One security decision (an auth decision unless `kind` says otherwise: webhook,
    upstream_restart, ...). Never holds a credential nor a tool argument value."""

    action: Literal["accept", "reject"]
    transport: str
    reason: str  # service_token, user_jwt, bypass, missing, invalid_service_token, ...
    principal: str = "anonymous"  # "service", "user:<sub>", "anonymous"
    path: str = ""
    client: str = ""
    profile: str = ""  # the catalog profile the principal is bound to, if any
    at: float = field(default_factory=time.time)
    kind: str = "auth"
    tool: str = ""
    request_id: str = ""


class AuditSink(Protocol):
    def record(self, event: AuditEvent) -> None: ...


def record_admin_action(
    audit: AuditSink | None,
    kind: str,
    outcome: Literal["accept", "reject"],
    reason: str,
    *,
    principal: str,
    transport: str,
    tool: str = "",
    request_id: str = "",
) -> None:
    """One admin action (upstream restart, breaker reset, ...) in the audit trail, whatever
    its outcome; free text cut to the trail's column sizes."""
    if audit is not None:
        audit.record(
            AuditEvent(
                outcome,
                transport,
                reason[:200],
                principal=principal[:200],
                kind=kind,
                tool=tool,
                request_id=request_id[:100],
            )
        )


class FanOutAuditSink:
    """Every event to each sink in turn (the log, then the store)."""

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = sinks

    def record(self, event: AuditEvent) -> None:
        for sink in self.sinks:
            sink.record(event)


class LogAuditSink:
    """Until the store persists them: one JSON line per event on the `archon_gateway.audit`
    logger (accepts at debug, rejects at warning, so a busy gateway does not flood its log)."""

    def record(self, event: AuditEvent) -> None:
        level = logging.DEBUG if event.action == "accept" else logging.WARNING
        if audit_log.isEnabledFor(level):
            audit_log.log(level, "audit %s", json.dumps(asdict(event), sort_keys=True))
