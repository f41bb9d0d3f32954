"""The first schema: the seven tables of the store.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TABLES = (
    "connection_metrics",
    "event_metrics",
    "hook_events",
    "node_registrations",
    "pattern_lineage_edges",
    "security_audit_log",
    "service_sessions",
)


def upgrade() -> None:
    op.create_table(
        "connection_metrics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("interval_s", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("connects", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_sum", sa.Double(), server_default="0", nullable=False),
        sa.Column("latency_max", sa.Double(), server_default="0", nullable=False),
        sa.Column("le_10ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("le_100ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column("le_1s", sa.Integer(), server_default="0", nullable=False),
        sa.Column("gt_1s", sa.Integer(), server_default="0", nullable=False),
        sa.Column("breaker_transitions", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_connection_metrics_at", "connection_metrics", ["at"], unique=False)
    op.create_table(
        "event_metrics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("interval_s", sa.Double(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("handler", sa.String(length=200), nullable=False),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retried", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dead_lettered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_sum", sa.Double(), server_default="0", nullable=False),
        sa.Column("latency_max", sa.Double(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_metrics_at", "event_metrics", ["at"], unique=False)
    op.create_table(
        "hook_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=200), server_default="", nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), server_default="", nullable=False),
        sa.Column("detail", sa.String(length=500), server_default="", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "delivery_id", name="uq_hook_events_delivery"),
    )
    op.create_index("ix_hook_events_received_at", "hook_events", ["received_at"], unique=False)
    op.create_table(
        "node_registrations",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("node_type", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=True),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("health", sa.String(length=32), nullable=False),
        sa.Column("registered_at", sa.Double(), nullable=False),
        sa.Column("last_heartbeat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_index("ix_node_registrations_type", "node_registrations", ["node_type"], unique=False)
    op.create_table(
        "pattern_lineage_edges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("parent_id", sa.String(length=200), nullable=False),
        sa.Column("child_id", sa.String(length=200), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("author", sa.String(length=200), server_default="", nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("parent_id", "child_id", name="uq_pattern_lineage_edge"),
    )
    op.create_index("ix_pattern_lineage_child", "pattern_lineage_edges", ["child_id"], unique=False)
    op.create_index(
        "ix_pattern_lineage_parent", "pattern_lineage_edges", ["parent_id"], unique=False
    )
    op.create_table(
        "security_audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.Column("tool", sa.String(length=200), server_default="", nullable=False),
        sa.Column("transport", sa.String(length=16), server_default="", nullable=False),
        sa.Column("path", sa.String(length=300), server_default="", nullable=False),
        sa.Column("remote", sa.String(length=100), server_default="", nullable=False),
        sa.Column("request_id", sa.String(length=100), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_security_audit_log_at", "security_audit_log", ["at"], unique=False)
    op.create_table(
        "service_sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_key", sa.String(length=100), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("client_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("client_version", sa.String(length=100), server_default="", nullable=False),
        sa.Column("protocol", sa.String(length=32), server_default="", nullable=False),
        sa.Column("principal", sa.String(length=200), server_default="", nullable=False),
        sa.Column("remote", sa.String(length=100), server_default="", nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_service_sessions_started_at", "service_sessions", ["started_at"], unique=False
    )
    op.create_index("ix_service_sessions_key", "service_sessions", ["session_key"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
