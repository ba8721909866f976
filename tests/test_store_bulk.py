"""The record step's bulk insert stores exactly what SQLAlchemy's executemany stores.

Runs on SQLite (``executemany`` of tuples) and on a real PostgreSQL (``COPY``), and on
each against the slow path, with text that COPY must escape and instants bound once.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from escalation_risk.alerts import AlertStore
from escalation_risk.alerts.bulk import insert_dicts, insert_rows
from escalation_risk.alerts.rows import _ROW_COLUMNS, _frame, _score_rows
from escalation_risk.alerts.tables import events_table, scores_table

NIGHT = pd.Timestamp("2025-06-30 23:59:59.999999").to_pydatetime()
COLUMNS = _ROW_COLUMNS  # the record step's columns, in its rows' order
ROWS = [
    ("d1", 0.91, "red", "new", None, '["邻里纠纷\\t多次", "a\\\\b"]', "tab\there\nnew line \\N 'q' \"dq\"", None),
    ("d2", 1e-300, "blue", "rising", -0.25, "[]", "", "[]"),
    ("d3", 0.5, "orange", "falling", 0.0, '["x"]', "\\", '["网格员当日上门"]'),
]


def _stored(conn: sa.Connection, version: str) -> list[tuple]:
    s = scores_table
    cols = [c for c in s.columns if c.name not in ("score_id", "model_version")]
    return [tuple(r) for r in conn.execute(sa.select(*cols).where(s.c.model_version == version)
                                           .order_by(s.c.dispute_id))]


def test_bulk_insert_stores_what_executemany_stores(store_url):
    with AlertStore(store_url, timezone="Asia/Shanghai") as st, st.engine.begin() as conn:
        for version, fast in (("fast", True), ("slow", False)):
            insert_rows(conn, scores_table, COLUMNS, ROWS,
                        {"district": "d", "as_of": NIGHT, "model_version": version},
                        plain=("probability", "delta"), fast=fast)
        conn.execute(sa.insert(scores_table), [dict(zip(COLUMNS, r), district="d", as_of=NIGHT,
                                                    model_version="sqlalchemy") for r in ROWS])
        fast, slow, reference = (_stored(conn, v) for v in ("fast", "slow", "sqlalchemy"))
        assert fast == reference and slow == reference
        assert [r[-2] for r in fast] == [r[6] for r in ROWS]  # the plan's tab, newline, backslash kept
        assert fast[0][2] == NIGHT  # the instant bound once comes back as the same local time
        # The raw value is the UTC instant (8 hours before Shanghai's local time).
        raw = conn.execute(sa.text("SELECT as_of FROM scores WHERE dispute_id = 'd1' "
                                   "AND model_version = 'fast'")).scalar_one()
        if st.engine.dialect.name == "postgresql":
            assert raw == pd.Timestamp("2025-06-30 15:59:59.999999", tz="UTC")
        else:
            assert str(raw).startswith("2025-06-30 15:59:59.999999")


def test_bulk_insert_of_dicts_keeps_nulls_and_varying_instants(store_url):
    with AlertStore(store_url) as st, st.engine.begin() as conn:
        alert_id = _one_alert(conn)
        events = [{"alert_id": alert_id, "at": NIGHT - pd.Timedelta(days=i).to_pytimedelta(), "who": "w",
                   "event": "updated", "from_status": None if i else "raised", "to_status": "raised",
                   "owner": "o", "note": f"n{i}"} for i in range(3)]
        insert_dicts(conn, events_table, events)
        got = conn.execute(sa.select(events_table.c.at, events_table.c.from_status, events_table.c.note)
                           .order_by(events_table.c.note)).all()
    assert [tuple(r) for r in got] == [(e["at"], e["from_status"], e["note"]) for e in events]


def test_bulk_insert_keeps_naive_times_apart_that_differ_only_in_fold(store_url):
    # 2024-11-03 01:30 in New York happens twice: fold 0 is EDT (05:30 UTC), fold 1 EST (06:30).
    first = datetime(2024, 11, 3, 1, 30)
    rows = [(f"d{fold}", 0.5, "red", "new", None, "[]", "", None, first.replace(fold=fold)) for fold in (0, 1)]
    with AlertStore(store_url, timezone="America/New_York") as st, st.engine.begin() as conn:
        insert_rows(conn, scores_table, (*COLUMNS, "as_of"), rows, {"district": "d", "model_version": "m"})
        raw = conn.execute(sa.text("SELECT as_of FROM scores ORDER BY dispute_id")).scalars().all()
    if st.engine.dialect.name == "postgresql":
        got = [v.astimezone(timezone.utc).replace(tzinfo=None) for v in raw]
    else:
        got = [datetime.fromisoformat(str(v)) for v in raw]
    assert got == [datetime(2024, 11, 3, 5, 30), datetime(2024, 11, 3, 6, 30)]


def _one_alert(conn: sa.Connection) -> int:
    conn.execute(sa.text("INSERT INTO alerts (district, dispute_id, model_version, level, probability, trend, "
                         "reasons, plan, status, owner, raised_by, raised_at, due_at, updated_at, status_at, "
                         "last_as_of) VALUES ('', 'd1', 'm', 'red', 0.9, 'new', '[]', '', 'raised', 'o', 'o', "
                         ":t, :t, :t, :t, :t)"), {"t": "2025-06-30 00:00:00"})
    return conn.execute(sa.text("SELECT alert_id FROM alerts")).scalar_one()


def test_bulk_insert_fills_python_side_constant_defaults(store_url):
    # alert_events.note has a Python-side default ("") and no server default.
    with AlertStore(store_url) as st, st.engine.begin() as conn:
        alert_id = _one_alert(conn)
        insert_dicts(conn, events_table, [{"alert_id": alert_id, "at": NIGHT, "who": "w", "event": "raised",
                                           "from_status": None, "to_status": "raised", "owner": "o"}])
        assert conn.execute(sa.select(events_table.c.note)).scalars().all() == [""]


def test_bulk_insert_refuses_a_computed_default_left_out():
    table = sa.Table("t", sa.MetaData(), sa.Column("a", sa.Integer), sa.Column("b", sa.Integer, default=lambda: 1))
    with sa.create_engine("sqlite://").begin() as conn:
        with pytest.raises(ValueError, match=r"t\.b .*computed"):
            insert_rows(conn, table, ("a",), [(1,)])


@pytest.mark.parametrize("fast", [True, False])
def test_bulk_insert_raises_what_sqlalchemy_raises(store_url, fast):
    # The same dispute twice in one night breaks uq_scores_dispute_night: the driver's own
    # error comes back as SQLAlchemy's IntegrityError, as on SQLAlchemy's path.
    with AlertStore(store_url) as st, st.engine.connect() as conn:
        with pytest.raises(sa.exc.IntegrityError) as caught, conn.begin():
            insert_rows(conn, scores_table, COLUMNS, [ROWS[0], ROWS[0]],
                        {"district": "d", "as_of": NIGHT, "model_version": "m"}, fast=fast)
        assert isinstance(caught.value.orig, st.engine.dialect.loaded_dbapi.IntegrityError)
        assert "INSERT" in str(caught.value.statement) or "COPY" in str(caught.value.statement)
        # The rows' values (a plan typed at the desk) stay out of the message.
        assert "new line" not in str(caught.value) and "0.91" not in str(caught.value)


def test_score_rows_are_keyed_by_the_record_steps_columns_in_order():
    scores = pd.DataFrame({"dispute_id": ["d1", "d2"], "probability": [0.9, 0.1], "level": ["red", "blue"],
                           "trend": ["new", "rising"], "delta": [None, -0.5], "reasons": [["x"], []],
                           "plan": ["p", None]})
    rows = _score_rows(scores, NIGHT)
    assert [tuple(r) for r in rows] == [_ROW_COLUMNS] * 2
    assert [tuple(r.values()) for r in rows] == [("d1", 0.9, "red", "new", None, '["x"]', "p", "[]"),
                                                 ("d2", 0.1, "blue", "rising", -0.5, "[]", "", "[]")]


def test_frame_gives_each_row_its_own_reasons_list():
    # Equal texts are parsed once, yet a caller editing one row's list must not edit another's.
    df = _frame([("d1", '["a", "b"]', '["甲"]'), ("d2", '["a", "b"]', '["甲"]'), ("d3", None, None)],
                ("dispute_id", "reasons", "reasons_zh"))
    for col in ("reasons", "reasons_zh"):
        lists = df[col].tolist()
        assert lists[0] == lists[1] and lists[0] is not lists[1]
        assert lists[2] == []
    df.at[0, "reasons"].append("c")
    assert df.at[1, "reasons"] == ["a", "b"]
