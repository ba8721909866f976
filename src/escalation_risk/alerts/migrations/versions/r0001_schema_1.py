"""Schema 1, the first release: scores, runs, alerts and their append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-12-01

The tables are written out here as that release made them (naive local times, no
district), frozen: later revisions change them, this one never does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts.migrations._common import append_only_triggers, record_version

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEVELS = ("red", "orange", "yellow", "blue")


def tables() -> sa.MetaData:
    """The schema 1 tables."""
    md = sa.MetaData()
    sa.Table(
        "schema_version", md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "scores", md,
        sa.Column("score_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dispute_id", sa.String(128), nullable=False),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("trend", sa.String(16), nullable=False),
        sa.Column("delta", sa.Float, nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.UniqueConstraint("dispute_id", "as_of", "model_version", name="uq_scores_dispute_night"),
        sa.Index("ix_scores_dispute_as_of", "dispute_id", "as_of"),
    )
    sa.Table(
        "runs", md,
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("n_scored", sa.Integer, nullable=False),
        *(sa.Column(f"n_{lvl}", sa.Integer, nullable=False) for lvl in LEVELS),
        sa.Column("n_new_alerts", sa.Integer, nullable=False),
        sa.Column("n_updated_alerts", sa.Integer, nullable=False),
        sa.Column("n_rising", sa.Integer, nullable=False),
        sa.Column("n_overdue", sa.Integer, nullable=False),
        sa.UniqueConstraint("as_of", "model_version", name="uq_runs_night"),
    )
    alerts = sa.Table(
        "alerts", md,
        sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dispute_id", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("trend", sa.String(16), nullable=False),
        sa.Column("delta", sa.Float, nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("raised_by", sa.String(128), nullable=False),
        sa.Column("raised_at", sa.DateTime, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("status_at", sa.DateTime, nullable=False),
        sa.Column("last_as_of", sa.DateTime, nullable=False),
        sa.Column("closed_at", sa.DateTime, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("escalated_to_crime", sa.Boolean, nullable=True),
        sa.Index("ix_alerts_status", "status"),
    )
    sa.Index("uq_alerts_one_open_per_dispute", alerts.c.dispute_id, unique=True,
             sqlite_where=alerts.c.status != "closed", postgresql_where=alerts.c.status != "closed")
    sa.Table(
        "alert_events", md,
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.alert_id"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Index("ix_alert_events_alert", "alert_id"),
    )
    return md


def upgrade() -> None:
    conn = op.get_bind()
    tables().create_all(conn)
    append_only_triggers(conn)
    record_version(conn, 1)
