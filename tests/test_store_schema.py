"""The alert store's schema under Alembic: a new store is at head, an old one is refused
until `escalation-risk store upgrade`, which keeps its alerts and audit trail.

Runs on SQLite and on a throwaway PostgreSQL server (``store_url``, tests/pg.py).
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from escalation_risk.alerts import SCHEMA_VERSION, AlertStore, SchemaVersionError
from escalation_risk.alerts import store as store_module
from escalation_risk.alerts.notify import notifications_table
from escalation_risk.cli import main
from escalation_risk.desk.users import metadata as desk_metadata

# The DDL the first release (schema 1) ran, as SQLite compiled it; {id} and {ts} are the
# dialect's serial key and naive timestamp types.
V1_DDL = """
CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at {ts} NOT NULL, PRIMARY KEY (version));
CREATE TABLE scores (score_id {id} NOT NULL, dispute_id VARCHAR(128) NOT NULL, as_of {ts} NOT NULL,
  model_version VARCHAR(128) NOT NULL, probability FLOAT NOT NULL, level VARCHAR(16) NOT NULL,
  trend VARCHAR(16) NOT NULL, delta FLOAT, reasons TEXT NOT NULL, "plan" TEXT NOT NULL, PRIMARY KEY (score_id),
  CONSTRAINT uq_scores_dispute_night UNIQUE (dispute_id, as_of, model_version));
CREATE INDEX ix_scores_dispute_as_of ON scores (dispute_id, as_of);
CREATE TABLE runs (run_id {id} NOT NULL, as_of {ts} NOT NULL, model_version VARCHAR(128) NOT NULL,
  started_at {ts} NOT NULL, finished_at {ts}, n_scored INTEGER NOT NULL, n_red INTEGER NOT NULL,
  n_orange INTEGER NOT NULL, n_yellow INTEGER NOT NULL, n_blue INTEGER NOT NULL, n_new_alerts INTEGER NOT NULL,
  n_updated_alerts INTEGER NOT NULL, n_rising INTEGER NOT NULL, n_overdue INTEGER NOT NULL, PRIMARY KEY (run_id),
  CONSTRAINT uq_runs_night UNIQUE (as_of, model_version));
CREATE TABLE alerts (alert_id {id} NOT NULL, dispute_id VARCHAR(128) NOT NULL, model_version VARCHAR(128) NOT NULL,
  level VARCHAR(16) NOT NULL, probability FLOAT NOT NULL, trend VARCHAR(16) NOT NULL, delta FLOAT,
  reasons TEXT NOT NULL, "plan" TEXT NOT NULL, status VARCHAR(16) NOT NULL, owner VARCHAR(128) NOT NULL,
  raised_by VARCHAR(128) NOT NULL, raised_at {ts} NOT NULL, due_at {ts} NOT NULL, updated_at {ts} NOT NULL,
  status_at {ts} NOT NULL, last_as_of {ts} NOT NULL, closed_at {ts}, outcome TEXT, escalated_to_crime BOOLEAN,
  PRIMARY KEY (alert_id));
CREATE UNIQUE INDEX uq_alerts_one_open_per_dispute ON alerts (dispute_id) WHERE status != 'closed';
CREATE INDEX ix_alerts_status ON alerts (status);
CREATE TABLE alert_events (event_id {id} NOT NULL, alert_id INTEGER NOT NULL, at {ts} NOT NULL,
  who VARCHAR(128) NOT NULL, event VARCHAR(16) NOT NULL, from_status VARCHAR(16), to_status VARCHAR(16) NOT NULL,
  owner VARCHAR(128) NOT NULL, note TEXT NOT NULL, PRIMARY KEY (event_id),
  FOREIGN KEY(alert_id) REFERENCES alerts (alert_id));
CREATE INDEX ix_alert_events_alert ON alert_events (alert_id)
"""
V1_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER alert_events_no_update BEFORE UPDATE ON alert_events "
        "BEGIN SELECT RAISE(ABORT, 'alert_events is append-only'); END",
        "CREATE TRIGGER alert_events_no_delete BEFORE DELETE ON alert_events "
        "BEGIN SELECT RAISE(ABORT, 'alert_events is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION alert_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'alert_events is append-only'; END $$",
        "CREATE TRIGGER alert_events_no_change BEFORE UPDATE OR DELETE ON alert_events "
        "FOR EACH ROW EXECUTE FUNCTION alert_events_append_only()",
    ],
}


def make_v1_store(url: str) -> None:
    """A store as the first release left it: one night, alert 7 raised then assigned."""
    engine = sa.create_engine(url)
    kinds = {"sqlite": ("INTEGER", "DATETIME"), "postgresql": ("SERIAL", "TIMESTAMP WITHOUT TIME ZONE")}
    serial, ts = kinds[engine.dialect.name]
    with engine.begin() as conn:
        for statement in V1_DDL.format(id=serial, ts=ts).split(";"):
            conn.execute(sa.text(statement))
        for statement in V1_TRIGGERS[engine.dialect.name]:
            conn.execute(sa.text(statement))
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1, '2025-06-01 08:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO scores (score_id, dispute_id, as_of, model_version, probability, level, trend, delta, "
            "reasons, \"plan\") VALUES (1, 'd1', '2025-06-30 00:00:00', 'm1', 0.9, 'red', 'new', NULL, "
            "'[\"两次报警\"]', '网格员当日上门')"))
        conn.execute(sa.text(
            "INSERT INTO runs VALUES (1, '2025-06-30 00:00:00', 'm1', '2025-06-30 01:00:00', "
            "'2025-06-30 01:05:00', 1, 1, 0, 0, 0, 1, 0, 0, 0)"))
        conn.execute(sa.text(
            "INSERT INTO alerts VALUES (7, 'd1', 'm1', 'red', 0.9, 'new', NULL, '[\"两次报警\"]', '网格员当日上门', "
            "'assigned', 'li', 'system', '2025-06-30 00:00:00', '2025-06-30 23:59:59', '2025-06-30 09:00:00', "
            "'2025-06-30 09:00:00', '2025-06-30 00:00:00', NULL, NULL, NULL)"))
        conn.execute(sa.text(
            "INSERT INTO alert_events VALUES (1, 7, '2025-06-30 00:00:00', 'system', 'raised', NULL, 'raised', "
            "'system', 'red, p=0.90'), (2, 7, '2025-06-30 09:00:00', 'wang', 'assigned', 'raised', 'assigned', "
            "'li', '')"))
    engine.dispose()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_a_previous_release_store_is_refused_then_upgraded_by_the_cli(store_url):
    make_v1_store(store_url)
    with pytest.raises(SchemaVersionError, match=rf"schema version 1, this escalation_risk needs {SCHEMA_VERSION}: "
                                                 r"back it up, then run `escalation-risk store upgrade --store "):
        AlertStore(store_url)
    code, out = cli("alerts", "list", "--store", store_url)  # a night or a listing: the same refusal
    assert code == 1 and "run `escalation-risk store upgrade --store" in out
    code, out = cli("store", "current", "--store", store_url)
    assert code == 1 and "schema version 1 (made before Alembic migrations)" in out and "needs `escalation" in out

    code, out = cli("store", "upgrade", "--store", store_url)
    assert code == 0, out
    assert f"schema version 1 -> schema version {SCHEMA_VERSION} (revision {SCHEMA_VERSION:04d})" in out
    code, out = cli("store", "current", "--store", store_url)
    assert code == 0 and f"revision {SCHEMA_VERSION:04d}" in out and "up to date" in out

    with AlertStore(store_url) as s:
        assert s.schema_version == SCHEMA_VERSION
        a = s.alert(7)
        assert (a["district"], a["status"], a["owner"], a["raised_at"]) == ("", "assigned", "li",
                                                                             pd.Timestamp("2025-06-30"))
        assert [(e["event"], e["who"], e["at"]) for e in a["events"]] == [
            ("raised", "system", pd.Timestamp("2025-06-30 00:00")),
            ("assigned", "wang", pd.Timestamp("2025-06-30 09:00"))]
        assert s.runs()[["as_of", "n_scored", "n_red"]].values.tolist() == [[pd.Timestamp("2025-06-30"), 1, 1]]
        assert s.scores()["reasons"].tolist() == [["两次报警"]]
        # it works on: the next night updates alert 7, a new alert gets a new id, the trail stays append-only
        night = pd.Timestamp("2025-07-01")
        frame = pd.DataFrame({"dispute_id": ["d1", "d9"], "as_of": night, "probability": [0.95, 0.9],
                              "level": ["red", "red"], "trend": ["rising", "new"], "delta": [0.05, None],
                              "reasons": [["x"], ["y"]], "plan": ["p", "p"]})
        s.record_night(frame, night, "m1")
        alerts = s.alerts().set_index("dispute_id")
        assert alerts.loc["d1", "alert_id"] == 7 and alerts.loc["d9", "alert_id"] > 7
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with s.engine.begin() as conn:
                conn.execute(sa.delete(store_module.events_table))
        with s.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(notifications_table)).scalar() == 0
    code, out = cli("store", "upgrade", "--store", store_url)
    assert code == 0 and f"already at schema version {SCHEMA_VERSION}" in out


def test_a_new_store_is_made_by_the_migrations_and_matches_the_code(store_url):
    with AlertStore(store_url) as s:
        state = store_module.schema_state(store_url)
        assert (state.version, state.revision, state.up_to_date) == (SCHEMA_VERSION, f"{SCHEMA_VERSION:04d}", True)
        inspector = sa.inspect(s.engine)
        # the one path gives every table the columns the code reads and writes
        for table in [*store_module.metadata.sorted_tables, notifications_table, *desk_metadata.sorted_tables]:
            found = {c["name"] for c in inspector.get_columns(table.name)}
            assert found == {c.name for c in table.columns}, table.name
        with s.engine.connect() as conn:
            versions = conn.execute(sa.select(store_module.schema_version_table.c.version)).scalars().all()
        assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))


def test_an_empty_database_is_upgraded_from_nothing_and_a_newer_revision_is_refused(store_url):
    code, out = cli("store", "upgrade", "--store", store_url)
    assert code == 0 and f"empty -> schema version {SCHEMA_VERSION}" in out
    with AlertStore(store_url) as s, s.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(SchemaVersionError,
                       match=f"schema version {SCHEMA_VERSION}, newer than this escalation_risk.*revision 0099"):
        AlertStore(store_url)
    code, out = cli("store", "upgrade", "--store", store_url)
    assert code == 1 and "newer" in out


def _code_metadata() -> sa.MetaData:
    """Every table the code reads and writes: the store's, the notifier's delivery log and the
    desk's users, sessions, tokens and access log."""
    md = sa.MetaData()
    for table in [*store_module.metadata.sorted_tables, notifications_table, *desk_metadata.sorted_tables]:
        table.to_metadata(md)
    return md


def _schema_differences(engine: sa.Engine) -> list:
    """What Alembic's autogenerate finds between the database and the code's tables (types,
    nullability, indexes, unique constraints, tables and columns)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, _code_metadata())


def _audit_row_is_refused(s: AlertStore) -> None:
    """The append-only triggers exist, and refuse an update and a delete of an audit row."""
    dialect = s.engine.dialect.name
    with s.engine.connect() as conn:
        if dialect == "sqlite":
            found = set(conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                             "AND tbl_name = 'alert_events'")).scalars())
            assert found == {"alert_events_no_update", "alert_events_no_delete"}
        else:
            found = set(conn.execute(sa.text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'alert_events'::regclass "
                                             "AND NOT tgisinternal")).scalars())
            assert found == {"alert_events_no_change"}
    if s.events().empty:
        night = pd.Timestamp("2025-07-02")
        s.record_night(pd.DataFrame({"dispute_id": ["d8"], "as_of": night, "probability": [0.9], "level": ["red"],
                                     "trend": ["new"], "reasons": [["x"]], "plan": ["p"]}), night, "m1")
    for statement in ("UPDATE alert_events SET note = 'rewritten'", "DELETE FROM alert_events"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with s.engine.begin() as conn:
                conn.execute(sa.text(statement))
    assert "rewritten" not in set(s.events()["note"])


def test_a_new_store_is_the_codes_schema_and_keeps_its_audit_trail(store_url):
    # an empty database brought to head by the first use of a store
    with AlertStore(store_url) as s:
        assert _schema_differences(s.engine) == []
        _audit_row_is_refused(s)


def test_a_schema_1_store_upgraded_is_the_codes_schema(store_url):
    make_v1_store(store_url)
    store_module.upgrade_store(store_url)
    with AlertStore(store_url) as s:
        assert _schema_differences(s.engine) == []
        _audit_row_is_refused(s)
        assert s.alert(7)["events"][1]["who"] == "wang"  # the rows came through the rebuild


def _upgrade_to(conn: sa.Connection, revision: str, *, stamp: str | None = None) -> None:
    """Run the shipped migrations up to ``revision`` only (``stamp``: a store made before
    Alembic, at that revision, as _run_migrations does)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(store_module._MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    if stamp:
        command.stamp(config, stamp)
    command.upgrade(config, revision)


def test_the_schema_comparison_sees_a_missing_revision(store_url):
    """The comparison above can fail: a store stopped at revision 0004 lacks schema 5's
    columns and index, and autogenerate names them."""
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            _upgrade_to(conn, "0004")
        found = {(d[0], d[3].name if d[0] == "add_column" else getattr(d[1], "name", None))
                 for d in _schema_differences(engine) if isinstance(d, tuple)}
        assert {("add_column", "webhook_id"), ("add_column", "key_fingerprint"),
                ("add_index", "uq_notifications_webhook_id")} <= found
    finally:
        engine.dispose()


def test_revision_0005_keys_old_alert_messages_by_dispute_and_gives_every_message_an_id(store_url):
    from escalation_risk.alerts.notify import webhook_id

    make_v1_store(store_url)
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            _upgrade_to(conn, "0004", stamp="0001")
            conn.execute(sa.text(
                "INSERT INTO notifications (key, kind, alert_id, owner, body, created_at, status, attempts) VALUES "
                "('alert:7:2025-06-30T00:00:00:red', 'alert', 7, NULL, '{}', '2025-06-30 01:00:00', 'delivered', 1), "
                "('reminder:李:2025-07-01', 'reminder', NULL, '李', '{}', '2025-07-01 09:00:00', 'pending', 0)"))
    finally:
        engine.dispose()
    store_module.upgrade_store(store_url)
    with AlertStore(store_url) as s, s.engine.connect() as conn:
        rows = conn.execute(sa.select(notifications_table.c.key, notifications_table.c.webhook_id)
                            .order_by(notifications_table.c.notification_id)).all()
    assert [r[0] for r in rows] == ["alert::d1:2025-06-30T00:00:00:red", "reminder:李:2025-07-01"]
    assert [r[1] for r in rows] == [webhook_id(r[0]) for r in rows] and all(r[1].isascii() for r in rows)
