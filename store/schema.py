"""The one schema for both engines (SQLite and PostgreSQL), as SQLAlchemy Core tables.

Times are seconds since the epoch (a double): portable, indexable and cheap to compare in
retention purges. Row ids are 64-bit on PostgreSQL and SQLite's rowid on SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

RowId = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", RowId, primary_key=True, autoincrement=True)


security_audit_log = Table(
    "security_audit_log",
    metadata,
    _id(),
    Column("at", Double, nullable=False),
    Column("principal", String(200), nullable=False),
    Column("action", String(64), nullable=False),  # auth, webhook, upstream_restart, ...
    Column("outcome", String(32), nullable=False),  # accept, reject, ok, failed
    Column("reason", String(200), nullable=False, server_default=""),
    Column("tool", String(200), nullable=False, server_default=""),
    Column("transport", String(16), nullable=False, server_default=""),
    Column("path", String(300), nullable=False, server_default=""),
    Column("remote", String(100), nullable=False, server_default=""),
    Column("request_id", String(100), nullable=False, server_default=""),
    Index("ix_security_audit_log_at", "at"),
)

service_sessions = Table(
    "service_sessions",
    metadata,
    _id(),
    Column("session_key", String(100), nullable=False),
    Column("transport", String(16), nullable=False),
    Column("client_name", String(200), nullable=False, server_default=""),
    Column("client_version", String(100), nullable=False, server_default=""),
    Column("protocol", String(32), nullable=False, server_default=""),
    Column("principal", String(200), nullable=False, server_default=""),
    Column("remote", String(100), nullable=False, server_default=""),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double, nullable=True),
    Column("calls", Integer, nullable=False, server_default="0"),
    Column("errors", Integer, nullable=False, server_default="0"),
    Index("ix_service_sessions_started_at", "started_at"),
    Index("ix_service_sessions_key", "session_key"),
)

connection_metrics = Table(
    "connection_metrics",
    metadata,
    _id(),
    Column("at", Double, nullable=False),  # the interval's start
    Column("interval_s", Double, nullable=False),
    Column("kind", String(32), nullable=False),  # upstream, http_backend, database
    Column("target", String(200), nullable=False),
    Column("connects", Integer, nullable=False, server_default="0"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("calls", Integer, nullable=False, server_default="0"),
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("latency_sum", Double, nullable=False, server_default="0"),
    Column("latency_max", Double, nullable=False, server_default="0"),
    Column("le_10ms", Integer, nullable=False, server_default="0"),
    Column("le_100ms", Integer, nullable=False, server_default="0"),
    Column("le_1s", Integer, nullable=False, server_default="0"),
    Column("gt_1s", Integer, nullable=False, server_default="0"),
    Column("breaker_transitions", Integer, nullable=False, server_default="0"),
    Index("ix_connection_metrics_at", "at"),
)

event_metrics = Table(
    "event_metrics",
    metadata,
    _id(),
    Column("at", Double, nullable=False),
    Column("interval_s", Double, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("handler", String(200), nullable=False),
    Column("processed", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("retried", Integer, nullable=False, server_default="0"),
    Column("dead_lettered", Integer, nullable=False, server_default="0"),
    Column("latency_sum", Double, nullable=False, server_default="0"),
    Column("latency_max", Double, nullable=False, server_default="0"),
    Index("ix_event_metrics_at", "at"),
)

hook_events = Table(
    "hook_events",
    metadata,
    _id(),
    Column("source", String(64), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("event", String(200), nullable=False, server_default=""),
    Column("received_at", Double, nullable=False),
    Column("status", String(32), nullable=False),  # received, acted, failed, ignored
    Column("action", String(64), nullable=False, server_default=""),
    Column("detail", String(500), nullable=False, server_default=""),
    Column("body", Text, nullable=False),
    UniqueConstraint("source", "delivery_id", name="uq_hook_events_delivery"),
    Index("ix_hook_events_received_at", "received_at"),
)

node_registrations = Table(
    "node_registrations",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("node_type", String(32), nullable=False),
    Column("version", String(64), nullable=False),
    Column("endpoint", String(500), nullable=True),
    Column("capabilities", Text, nullable=False),  # JSON list of strings
    Column("metadata", Text, nullable=False),  # JSON object
    Column("health", String(32), nullable=False),
    Column("registered_at", Double, nullable=False),
    Column("last_heartbeat", Double, nullable=False),
    Index("ix_node_registrations_type", "node_type"),
)

pattern_lineage_edges = Table(
    "pattern_lineage_edges",
    metadata,
    _id(),
    Column("parent_id", String(200), nullable=False),
    Column("child_id", String(200), nullable=False),
    Column("relation", String(16), nullable=False),
    Column("reason", String(1000), nullable=False, server_default=""),
    Column("author", String(200), nullable=False, server_default=""),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("parent_id", "child_id", name="uq_pattern_lineage_edge"),
    Index("ix_pattern_lineage_child", "child_id"),
    Index("ix_pattern_lineage_parent", "parent_id"),
)

# Tables the writer appends to, with the column that retention purges by.
TIME_COLUMNS = {
    "security_audit_log": "at",
    "service_sessions": "started_at",
    "connection_metrics": "at",
    "event_metrics": "at",
    "hook_events": "received_at",
}
