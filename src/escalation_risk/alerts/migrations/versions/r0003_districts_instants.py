"""Schema 3 (issue 16): a ``district`` in every key, timezone-aware instants.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The keys and the time type change, which SQLite cannot alter in place: the tables are
read, dropped and created again (with their triggers) and the rows written back, alert
ids and event ids kept; naive local times are read in the store's zone and stored as
instants.

Schema 3's tables and its instant type are written out here, frozen: later revisions
change the code's tables (``alerts/tables.py``), never this one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts.migrations._common import append_only_triggers, record_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LEVELS = ("red", "orange", "yellow", "blue")
# Where the store's engine keeps its zone (alerts/connection.py); Asia/Shanghai without one.
_ZONE_ATTRIBUTE = "_escalation_risk_zone"
_DEFAULT_ZONE = "Asia/Shanghai"


class Instant3(sa.types.TypeDecorator):
    """Schema 3's instant: ``timestamp with time zone`` on PostgreSQL, UTC text on SQLite;
    a naive value is local time in the store's zone."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=getattr(dialect, _ZONE_ATTRIBUTE, None) or ZoneInfo(_DEFAULT_ZONE))
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)


def _district() -> sa.Column:
    return sa.Column("district", sa.String(64), nullable=False, server_default="")


def tables() -> sa.MetaData:
    """The schema 3 tables this revision rebuilds."""
    md = sa.MetaData()
    sa.Table(
        "scores", md,
        sa.Column("score_id", sa.Integer, primary_key=True, autoincrement=True),
        _district(),
        sa.Column("dispute_id", sa.String(128), nullable=False),
        sa.Column("as_of", Instant3, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("trend", sa.String(16), nullable=False),
        sa.Column("delta", sa.Float, nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("reasons_zh", sa.Text, nullable=True),
        sa.UniqueConstraint("district", "dispute_id", "as_of", "model_version", name="uq_scores_dispute_night"),
        sa.Index("ix_scores_dispute_as_of", "district", "dispute_id", "as_of"),
    )
    run_columns = [
        _district(),
        sa.Column("as_of", Instant3, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("started_at", Instant3, nullable=False),
        sa.Column("finished_at", Instant3, nullable=True),
        sa.Column("n_scored", sa.Integer, nullable=False),
        *(sa.Column(f"n_{lvl}", sa.Integer, nullable=False) for lvl in LEVELS),
        sa.Column("n_new_alerts", sa.Integer, nullable=False),
        sa.Column("n_updated_alerts", sa.Integer, nullable=False),
        sa.Column("n_rising", sa.Integer, nullable=False),
        sa.Column("n_overdue", sa.Integer, nullable=False),
        sa.Column("input_fingerprint", sa.String(64), nullable=True),
    ]
    sa.Table(
        "runs", md,
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        *run_columns,
        sa.UniqueConstraint("district", "as_of", "model_version", name="uq_runs_night"),
    )
    sa.Table(
        "replaced_runs", md,
        sa.Column("replaced_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("replaced_at", Instant3, nullable=False),
        sa.Column("replaced_by_fingerprint", sa.String(64), nullable=True),
        sa.Column("old_run_id", sa.Integer, nullable=False),
        *(sa.Column(c.name, c.type, nullable=c.nullable) for c in run_columns),
    )
    sa.Table(
        "replaced_scores", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("replaced_id", sa.Integer, sa.ForeignKey("replaced_runs.replaced_id"), nullable=False),
        *(sa.Column(c.name, c.type, nullable=c.nullable) for c in md.tables["scores"].columns
          if c.name != "score_id"),
    )
    alerts = sa.Table(
        "alerts", md,
        sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
        _district(),
        sa.Column("dispute_id", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("trend", sa.String(16), nullable=False),
        sa.Column("delta", sa.Float, nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("reasons_zh", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("raised_by", sa.String(128), nullable=False),
        sa.Column("raised_at", Instant3, nullable=False),
        sa.Column("due_at", Instant3, nullable=False),
        sa.Column("updated_at", Instant3, nullable=False),
        sa.Column("status_at", Instant3, nullable=False),
        sa.Column("last_as_of", Instant3, nullable=False),
        sa.Column("closed_at", Instant3, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("escalated_to_crime", sa.Boolean, nullable=True),
        sa.Index("ix_alerts_status", "status"),
    )
    sa.Index("uq_alerts_one_open_per_dispute", alerts.c.district, alerts.c.dispute_id, unique=True,
             sqlite_where=alerts.c.status != "closed", postgresql_where=alerts.c.status != "closed")
    sa.Table(
        "alert_events", md,
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.alert_id"), nullable=False),
        sa.Column("at", Instant3, nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Index("ix_alert_events_alert", "alert_id"),
    )
    return md


# Parents before children: rows are written in this order, tables dropped in reverse.
_ORDER = ("scores", "runs", "alerts", "alert_events", "replaced_runs", "replaced_scores")
_KEYS = ("score_id", "run_id", "alert_id", "event_id", "replaced_id", "id")


def _datetime(value: Any) -> Any:
    # A schema 2 store holds naive local times (SQLite hands them over as text).
    return pd.Timestamp(value).to_pydatetime() if isinstance(value, (str, datetime)) else value


def upgrade() -> None:
    conn = op.get_bind()
    md = tables()
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in _ORDER:
        instants = {c.name for c in md.tables[name].columns if isinstance(c.type, Instant3)}
        result = conn.execute(sa.text(f"SELECT * FROM {name}")).mappings().all()
        rows[name] = [{k: (_datetime(v) if k in instants and v is not None else v) for k, v in r.items()}
                      for r in result]
    for name in reversed(_ORDER):
        conn.execute(sa.text(f"DROP TABLE {name}"))
    md.create_all(conn, tables=[md.tables[name] for name in _ORDER])
    append_only_triggers(conn)
    for name in _ORDER:
        if rows[name]:
            conn.execute(sa.insert(md.tables[name]), rows[name])
    if conn.dialect.name == "postgresql":  # serials continue after the ids copied in
        for name, pk in zip(_ORDER, _KEYS):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{name}', '{pk}'), "
                f"COALESCE((SELECT MAX({pk}) FROM {name}), 0) + 1, false)"))
    record_version(conn, 3)
