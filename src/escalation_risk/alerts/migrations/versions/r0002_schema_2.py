"""Schema 2 (issue 14): a run's input fingerprint, Chinese reasons, the archive of replaced nights.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts.migrations._common import record_version
from escalation_risk.alerts.migrations.versions.r0001_schema_1 import tables as schema_1_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("input_fingerprint", sa.String(64), nullable=True))
    op.add_column("scores", sa.Column("reasons_zh", sa.Text, nullable=True))
    op.add_column("alerts", sa.Column("reasons_zh", sa.Text, nullable=True))
    # A night recorded again on a corrected export moves its first recording here.
    v1 = schema_1_tables()
    runs = [sa.Column(c.name, c.type, nullable=c.nullable) for c in v1.tables["runs"].columns if c.name != "run_id"]
    scores = [sa.Column(c.name, c.type, nullable=c.nullable)
              for c in v1.tables["scores"].columns if c.name != "score_id"]
    op.create_table(
        "replaced_runs",
        sa.Column("replaced_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("replaced_at", sa.DateTime, nullable=False),
        sa.Column("replaced_by_fingerprint", sa.String(64), nullable=True),
        sa.Column("old_run_id", sa.Integer, nullable=False),
        *runs,
        sa.Column("input_fingerprint", sa.String(64), nullable=True),
    )
    op.create_table(
        "replaced_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("replaced_id", sa.Integer, sa.ForeignKey("replaced_runs.replaced_id"), nullable=False),
        *scores,
        sa.Column("reasons_zh", sa.Text, nullable=True),
    )
    record_version(op.get_bind(), 2)
