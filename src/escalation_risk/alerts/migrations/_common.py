"""What every revision does besides its own change: note its schema version."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

_schema_version = sa.table("schema_version", sa.column("version", sa.Integer), sa.column("applied_at", sa.DateTime))


def record_version(conn: sa.Connection, version: int) -> None:
    """Append ``version`` to ``schema_version`` (what releases before Alembic read), applied
    now in UTC: naive before schema 5, an instant once 0005 made the column one on PostgreSQL."""
    now = datetime.now(timezone.utc)
    aware = conn.dialect.name == "postgresql" and conn.execute(sa.text(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'schema_version' AND column_name = 'applied_at'")).scalar() == "timestamp with time zone"
    applied_at = now if aware else now.replace(tzinfo=None)
    conn.execute(sa.insert(_schema_version).values(version=version, applied_at=applied_at))


def append_only_triggers(conn: sa.Connection) -> None:
    """The database itself refuses edits of the audit trail ``alert_events``."""
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(sa.text(
                f"CREATE TRIGGER alert_events_no_{op.lower()} BEFORE {op} ON alert_events "
                "BEGIN SELECT RAISE(ABORT, 'alert_events is append-only'); END"))
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text(
            "CREATE OR REPLACE FUNCTION alert_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'alert_events is append-only'; END $$"))
        conn.execute(sa.text(
            "CREATE TRIGGER alert_events_no_change BEFORE UPDATE OR DELETE ON alert_events "
            "FOR EACH ROW EXECUTE FUNCTION alert_events_append_only()"))
