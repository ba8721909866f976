"""Schema 5 (issue 25): delivery claims and webhook ids, and the store's pseudonym key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

- ``notifications.webhook_id``: the id a message travels under (the ``webhook-id``
  header of the Standard Webhooks scheme, and ``message_id`` in a JSON body), fixed when
  the message is queued so that every resend carries the same one; ASCII, and no owner's
  name in it (a reminder's key has one). Messages queued before get theirs here.
- An alert message's key becomes ``alert:DISTRICT:DISPUTE:NIGHT:LEVEL`` (it was
  ``alert:ALERT_ID:NIGHT:LEVEL``): a night recorded again after a crash may number its
  alerts differently on PostgreSQL, and its messages must keep their keys.
- ``notifications.claim`` and ``claimed_at``: a deliverer claims a message (status
  ``sending``) before it POSTs, so two deliverers never send the same message; a claim
  older than the deliverer's lease is taken over (the claimer died).
- ``runs.key_fingerprint`` (and ``replaced_runs``): the fingerprint of the pseudonym key
  a night's ids were made with; a store refuses nights under another key.
- ``schema_version.applied_at`` an instant on PostgreSQL too, as the code reads it.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts.migrations._common import record_version

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def webhook_id(key: str) -> str:
    """The webhook id of a message queued under ``key`` before schema 5 (the notifier
    makes the same for new ones)."""
    return "er_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column("notifications", sa.Column("webhook_id", sa.String(64), nullable=True))
    op.add_column("notifications", sa.Column("claim", sa.String(32), nullable=True))
    op.add_column("notifications", sa.Column("claimed_at", sa.DateTime, nullable=True))
    n = sa.table("notifications", sa.column("notification_id", sa.Integer), sa.column("key", sa.String),
                 sa.column("kind", sa.String), sa.column("alert_id", sa.Integer), sa.column("webhook_id", sa.String))
    a = sa.table("alerts", sa.column("alert_id", sa.Integer), sa.column("district", sa.String),
                 sa.column("dispute_id", sa.String))
    rows = conn.execute(sa.select(n.c.notification_id, n.c.key, n.c.kind, a.c.district, a.c.dispute_id)
                        .select_from(n.outerjoin(a, a.c.alert_id == n.c.alert_id))).all()
    for nid, key, kind, district, dispute_id in rows:
        parts = key.split(":")
        if kind == "alert" and dispute_id is not None and len(parts) >= 4 and parts[1].isdigit():
            # alert:ID:NIGHT:LEVEL, NIGHT itself holding colons (2025-06-30T00:00:00)
            key = f"alert:{district}:{dispute_id}:{':'.join(parts[2:])}"
        conn.execute(sa.update(n).where(n.c.notification_id == nid).values(key=key, webhook_id=webhook_id(key)))
    with op.batch_alter_table("notifications") as batch:  # SQLite: NOT NULL needs the table rebuilt
        batch.alter_column("webhook_id", existing_type=sa.String(64), nullable=False)
    op.create_index("uq_notifications_webhook_id", "notifications", ["webhook_id"], unique=True)
    op.add_column("runs", sa.Column("key_fingerprint", sa.String(64), nullable=True))
    op.add_column("replaced_runs", sa.Column("key_fingerprint", sa.String(64), nullable=True))
    if conn.dialect.name == "postgresql":
        # Schemas 1 to 4 kept it naive (UTC, written by record_version); the code reads an instant.
        op.alter_column("schema_version", "applied_at", type_=sa.DateTime(timezone=True),
                        existing_nullable=False, postgresql_using="applied_at AT TIME ZONE 'UTC'")
    record_version(conn, 5)
