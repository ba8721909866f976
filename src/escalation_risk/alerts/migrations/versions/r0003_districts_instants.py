"""Schema 3 (issue 16): a ``district`` in every key, timezone-aware instants.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The keys and the time type change, which SQLite cannot alter in place: the tables are
read, dropped and created again (with their triggers) and the rows written back, alert
ids and event ids kept; naive local times are read in the store's zone and stored as
instants.

The tables are created from the store's current definitions, which are schema 3's
(schema 4 adds a table and changes none of these). A revision that changes one of these
tables must first freeze schema 3's definitions here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts import store
from escalation_risk.alerts.migrations._common import record_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = (store.scores_table, store.runs_table, store.alerts_table, store.events_table,
           store.replaced_runs_table, store.replaced_scores_table)
_KEYS = ("score_id", "run_id", "alert_id", "event_id", "replaced_id", "id")


def upgrade() -> None:
    conn = op.get_bind()
    rows: dict[str, list[dict[str, Any]]] = {}
    for t in _TABLES:
        result = conn.execute(sa.text(f"SELECT * FROM {t.name}")).mappings().all()
        rows[t.name] = [
            {k: (pd.Timestamp(v).to_pydatetime() if k in store._DATETIME_COLUMNS and v is not None else v)
             for k, v in r.items()}
            for r in result
        ]
    for t in reversed(_TABLES):
        conn.execute(sa.text(f"DROP TABLE {t.name}"))
    store.metadata.create_all(conn, tables=list(_TABLES))
    for t in _TABLES:
        if rows[t.name]:
            conn.execute(sa.insert(t), rows[t.name])
    if conn.dialect.name == "postgresql":  # serials continue after the ids copied in
        for t, pk in zip(_TABLES, _KEYS):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{t.name}', '{pk}'), "
                f"COALESCE((SELECT MAX({pk}) FROM {t.name}), 0) + 1, false)"))
    record_version(conn, 3)
