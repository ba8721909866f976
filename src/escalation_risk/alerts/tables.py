"""The alert store's tables (SQLAlchemy Core): what the code reads and writes."""

from __future__ import annotations

import sqlalchemy as sa

from .instants import _Instant
from .lifecycle import (
    LEVELS,
)


def _district_column() -> sa.Column:
    # '' for a single district's store: NULL would not take part in unique keys.
    return sa.Column("district", sa.String(64), nullable=False, server_default="", default="")


metadata = sa.MetaData()

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", _Instant, nullable=False),
)

scores_table = sa.Table(
    "scores",
    metadata,
    sa.Column("score_id", sa.Integer, primary_key=True, autoincrement=True),
    _district_column(),
    sa.Column("dispute_id", sa.String(128), nullable=False),
    sa.Column("as_of", _Instant, nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("trend", sa.String(16), nullable=False),
    sa.Column("delta", sa.Float, nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of str
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("reasons_zh", sa.Text, nullable=True),  # JSON list of str (schema 2)
    sa.UniqueConstraint("district", "dispute_id", "as_of", "model_version", name="uq_scores_dispute_night"),
    sa.Index("ix_scores_dispute_as_of", "district", "dispute_id", "as_of"),
)

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    _district_column(),
    sa.Column("as_of", _Instant, nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("started_at", _Instant, nullable=False),
    sa.Column("finished_at", _Instant, nullable=True),
    sa.Column("n_scored", sa.Integer, nullable=False, default=0),
    *(sa.Column(f"n_{lvl}", sa.Integer, nullable=False, default=0) for lvl in LEVELS),
    sa.Column("n_new_alerts", sa.Integer, nullable=False, default=0),
    sa.Column("n_updated_alerts", sa.Integer, nullable=False, default=0),
    sa.Column("n_rising", sa.Integer, nullable=False, default=0),
    sa.Column("n_overdue", sa.Integer, nullable=False, default=0),
    # SHA-256 of the night's input (data and settings), to tell a re-run from a correction (schema 2).
    sa.Column("input_fingerprint", sa.String(64), nullable=True),
    # The fingerprint of the pseudonym key the night's ids were made with (schema 5): one
    # store, one key; a night under another key is refused (see recording.StoreKeyError).
    sa.Column("key_fingerprint", sa.String(64), nullable=True),
    sa.UniqueConstraint("district", "as_of", "model_version", name="uq_runs_night"),
)

# A night recorded again on a corrected export (``replace=True``) moves its first
# recording here, run and scores, so the audit trail keeps what was seen then (schema 2).
def _columns_like(table: sa.Table, skip: str) -> list[sa.Column]:
    """Fresh columns of the same names and types (no keys, no constraints)."""
    return [sa.Column(c.name, c.type, nullable=c.nullable) for c in table.columns if c.name != skip]


replaced_runs_table = sa.Table(
    "replaced_runs",
    metadata,
    sa.Column("replaced_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("replaced_at", _Instant, nullable=False),
    sa.Column("replaced_by_fingerprint", sa.String(64), nullable=True),
    sa.Column("old_run_id", sa.Integer, nullable=False),
    *_columns_like(runs_table, "run_id"),
)
replaced_scores_table = sa.Table(
    "replaced_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("replaced_id", sa.Integer, sa.ForeignKey("replaced_runs.replaced_id"), nullable=False),
    *_columns_like(scores_table, "score_id"),
)

alerts_table = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    _district_column(),
    sa.Column("dispute_id", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("trend", sa.String(16), nullable=False),
    sa.Column("delta", sa.Float, nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("reasons_zh", sa.Text, nullable=True),  # schema 2
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("raised_by", sa.String(128), nullable=False),
    sa.Column("raised_at", _Instant, nullable=False),
    sa.Column("due_at", _Instant, nullable=False),
    sa.Column("updated_at", _Instant, nullable=False),
    # When the status last changed: follow-up reminders count from here.
    sa.Column("status_at", _Instant, nullable=False),
    # The night of the score the alert currently shows; older nights never overwrite it.
    sa.Column("last_as_of", _Instant, nullable=False),
    sa.Column("closed_at", _Instant, nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("escalated_to_crime", sa.Boolean, nullable=True),
    sa.Index("ix_alerts_status", "status"),
)
# One open alert per (district, dispute), enforced by the database itself (a partial unique index
# on both SQLite and PostgreSQL), so even a buggy caller cannot open a second one.
sa.Index(
    "uq_alerts_one_open_per_dispute",
    alerts_table.c.district,
    alerts_table.c.dispute_id,
    unique=True,
    sqlite_where=alerts_table.c.status != "closed",
    postgresql_where=alerts_table.c.status != "closed",
)

events_table = sa.Table(
    "alert_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.alert_id"), nullable=False),
    sa.Column("at", _Instant, nullable=False),
    sa.Column("who", sa.String(128), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # raised/updated/assigned/status/closed
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),  # the owner after the event
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Index("ix_alert_events_alert", "alert_id"),
)

# The audit trail is append-only: the database refuses edits, not just this code. The
# triggers are made by the migrations (``migrations/_common.append_only_triggers``, the one
# definition), which own the schema; these tables are what the code reads and writes.


_SCORE_COLUMNS = (
    "district", "dispute_id", "as_of", "model_version", "probability", "level", "trend", "delta",
    "reasons", "plan", "reasons_zh",
)
_ALERT_COLUMNS = tuple(c.name for c in alerts_table.columns)
_EVENT_COLUMNS = tuple(c.name for c in events_table.columns)
_RUN_COLUMNS = tuple(c.name for c in runs_table.columns)
_OUTCOME_COLUMNS = (
    "district", "dispute_id", "alert_id", "raised_at", "closed_at", "outcome", "escalated_to_crime",
)
_DATETIME_COLUMNS = frozenset(
    {"as_of", "started_at", "finished_at", "raised_at", "due_at", "updated_at",
     "status_at", "last_as_of", "closed_at", "at", "applied_at", "replaced_at"}
)
