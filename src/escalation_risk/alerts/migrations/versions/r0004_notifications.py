"""Schema 4: the delivery log of webhook messages (``notifications``, see alerts/notify.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Before Alembic the notifier created this table itself on first use, so a store that
has it already keeps it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts.migrations._common import record_version

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if not sa.inspect(conn).has_table("notifications"):
        op.create_table(
            "notifications",
            sa.Column("notification_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("key", sa.String(255), nullable=False, unique=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("alert_id", sa.Integer, nullable=True),
            sa.Column("owner", sa.String(128), nullable=True),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("last_attempt_at", sa.DateTime, nullable=True),
            sa.Column("last_error", sa.Text, nullable=True),
            sa.Column("delivered_at", sa.DateTime, nullable=True),
        )
        op.create_index("ix_notifications_status", "notifications", ["status"])
    record_version(conn, 4)
