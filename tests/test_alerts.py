"""The alert store, the alert lifecycle and the ``alerts`` command line.

Every test that takes ``store``, ``night1``, ``store_url`` or ``cli_store`` runs twice:
on SQLite and on a real PostgreSQL server started for the session (tests/pg.py).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from escalation_risk.alerts import (
    SCHEMA_VERSION,
    TRANSITIONS,
    AlertNotFoundError,
    AlertStore,
    AlertTransitionError,
    SchemaVersionError,
    due_at,
)
from escalation_risk.alerts import store as store_module
from escalation_risk.alerts.store import NightConflictError, StoreBusyError
from escalation_risk.cli.alerts import alerts as alerts_cli

NIGHT1 = pd.Timestamp("2025-06-30")
NIGHT2 = pd.Timestamp("2025-07-01")
NIGHT3 = pd.Timestamp("2025-07-02")


def scores(as_of, rows):
    """A nightly scores frame from (dispute_id, probability, level, trend) tuples."""
    return pd.DataFrame(
        {
            "dispute_id": [r[0] for r in rows],
            "as_of": pd.Timestamp(as_of),
            "probability": [r[1] for r in rows],
            "level": [r[2] for r in rows],
            "trend": [r[3] for r in rows],
            "delta": [np.nan if r[3] == "new" else 0.1 for r in rows],
            "reasons": ([["邻里纠纷多次调解失败", "近30天两次报警"]]
                        + [json.dumps(["debt"])] * (len(rows) - 1))[: len(rows)],
            "plan": ["网格员当日上门"] * len(rows),
        }
    )


NIGHT1_SCORES = [
    ("d1", 0.91, "red", "new"),
    ("d2", 0.55, "orange", "new"),
    ("d3", 0.30, "yellow", "new"),
    ("d4", 0.05, "blue", "new"),
]


def dump(store: AlertStore) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    out = {}
    with store.engine.connect() as conn:
        for table in store_module.metadata.sorted_tables:
            query = sa.select(table).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(query)]
    return out


@pytest.fixture
def store(store_url):
    with AlertStore(store_url) as s:
        yield s


@pytest.fixture
def night1(store):
    store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
    return store


def alert_of(store, dispute_id):
    df = store.alerts(dispute_id=dispute_id)
    assert len(df) == 1
    return store.alert(int(df["alert_id"].iloc[0]))


# ---------------------------------------------------------------------------
# record_night


def test_record_night_raises_alerts_for_alert_levels_only(store):
    summary = store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
    assert summary.n_scored == 4
    assert summary.by_level == {"red": 1, "orange": 1, "yellow": 1, "blue": 1}
    assert (summary.new_alerts, summary.updated_alerts, summary.overdue) == (3, 0, 0)
    a = store.alerts()
    assert sorted(a["dispute_id"]) == ["d1", "d2", "d3"]
    assert set(a["status"]) == {"raised"} and set(a["owner"]) == {"system"}
    assert len(store.scores()) == 4
    d1 = alert_of(store, "d1")
    assert d1["reasons"] == ["邻里纠纷多次调解失败", "近30天两次报警"]
    assert [e["event"] for e in d1["events"]] == ["raised"]
    run = store.runs().iloc[0]
    assert (run["n_scored"], run["n_red"], run["n_new_alerts"]) == (4, 1, 3)


def test_record_night_is_idempotent(store_url):
    url = store_url
    with AlertStore(url) as s:
        s.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
        s.record_night(scores(NIGHT2, [("d1", 0.95, "red", "rising"), ("d4", 0.6, "orange", "rising")]), NIGHT2, "m1")
        before = dump(s)
    # Again, from a fresh process's point of view: a new store object on the same file.
    with AlertStore(url) as s:
        again = s.record_night(scores(NIGHT2, [("d1", 0.95, "red", "rising"), ("d4", 0.6, "orange", "rising")]),
                               NIGHT2, "m1")
        first_again = s.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
        after = dump(s)
    assert after == before
    assert again.already_recorded and first_again.already_recorded
    assert (again.new_alerts, again.updated_alerts) == (1, 1)  # the first recording's counts


@pytest.mark.parametrize("on_night", [1, 2])
def test_failure_mid_transaction_leaves_store_unchanged(store, monkeypatch, on_night):
    if on_night == 2:
        store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
    before = dump(store)
    from escalation_risk.alerts import recording  # where record_night looks it up
    real = recording._apply_alerts

    def apply_then_crash(*args, **kwargs):
        real(*args, **kwargs)  # scores, run, alerts and events are written by now
        raise RuntimeError("power cut")

    monkeypatch.setattr(recording, "_apply_alerts", apply_then_crash)
    night = NIGHT1 if on_night == 1 else NIGHT2
    rows = NIGHT1_SCORES if on_night == 1 else [("d1", 0.99, "red", "rising"), ("d4", 0.7, "orange", "rising")]
    with pytest.raises(RuntimeError, match="power cut"):
        store.record_night(scores(night, rows), night, "m1")
    assert dump(store) == before
    # and the night can be recorded properly afterwards
    monkeypatch.setattr(recording, "_apply_alerts", real)
    assert not store.record_night(scores(night, rows), night, "m1").already_recorded


def test_one_open_alert_per_dispute_across_nights(night1):
    for night in (NIGHT2, NIGHT3):
        night1.record_night(scores(night, [("d1", 0.9, "red", "steady")]), night, "m1")
    d1 = night1.alerts(dispute_id="d1")
    assert len(d1) == 1
    assert d1["last_as_of"].iloc[0] == NIGHT3
    assert len(night1.scores(dispute_id="d1")) == 3
    # the database itself refuses a second open alert for a dispute
    with pytest.raises(sa.exc.IntegrityError):
        with night1.engine.begin() as conn:
            row = dict(conn.execute(sa.select(store_module.alerts_table).where(
                store_module.alerts_table.c.dispute_id == "d1")).mappings().one())
            row.pop("alert_id")
            conn.execute(sa.insert(store_module.alerts_table).values(**row))


def test_level_change_updates_the_alert_and_tightens_due(night1):
    d3 = alert_of(night1, "d3")
    assert d3["due_at"] == pd.Timestamp("2025-07-07 23:59:59.999999")  # yellow: 7 days
    s = night1.record_night(scores(NIGHT2, [("d3", 0.8, "red", "rising")]), NIGHT2, "m1")
    assert (s.new_alerts, s.updated_alerts, s.rising) == (0, 1, 1)
    d3 = alert_of(night1, "d3")
    assert (d3["level"], d3["trend"], d3["probability"]) == ("red", "rising", 0.8)
    assert d3["due_at"] == pd.Timestamp("2025-07-02 23:59:59.999999")  # red: by the end of the next day
    update = d3["events"][-1]
    assert update["event"] == "updated" and update["from_status"] == update["to_status"] == "raised"
    assert "level yellow -> red" in update["note"] and "trend new -> rising" in update["note"]
    # falling back never loosens the due time
    night1.record_night(scores(NIGHT3, [("d3", 0.4, "yellow", "falling")]), NIGHT3, "m1")
    d3 = alert_of(night1, "d3")
    assert d3["level"] == "yellow" and d3["due_at"] == pd.Timestamp("2025-07-02 23:59:59.999999")


def test_drop_to_blue_keeps_the_alert_open(night1):
    night1.record_night(scores(NIGHT2, [("d2", 0.05, "blue", "falling")]), NIGHT2, "m1")
    d2 = alert_of(night1, "d2")
    assert d2["status"] == "raised" and d2["level"] == "blue"
    assert d2["events"][-1]["event"] == "updated"


def test_same_level_and_trend_is_no_event(night1):
    s = night1.record_night(scores(NIGHT2, [("d1", 0.93, "red", "new")]), NIGHT2, "m1")
    assert s.updated_alerts == 0
    d1 = alert_of(night1, "d1")
    assert d1["probability"] == 0.93 and len(d1["events"]) == 1


def test_older_night_backfilled_does_not_roll_the_alert_back(night1):
    night1.record_night(scores(NIGHT3, [("d1", 0.95, "red", "rising")]), NIGHT3, "m1")
    with pytest.raises(NightConflictError, match="older than the newest recorded night"):
        night1.record_night(scores(NIGHT2, [("d1", 0.40, "yellow", "falling")]), NIGHT2, "m1")
    night1.record_night(scores(NIGHT2, [("d1", 0.40, "yellow", "falling")]), NIGHT2, "m1", backfill=True)
    d1 = alert_of(night1, "d1")
    assert (d1["level"], d1["probability"]) == ("red", 0.95)
    assert len(night1.scores(dispute_id="d1")) == 3


def test_closed_alert_then_a_new_one_for_the_same_dispute(night1):
    a = alert_of(night1, "d1")["alert_id"]
    night1.update(a, "escalated", by="wang", at=NIGHT1 + pd.Timedelta(hours=9))
    night1.update(a, "follow_up", by="wang", at=NIGHT1 + pd.Timedelta(days=1))
    night1.close(a, by="wang", outcome="police took over", escalated_to_crime=False,
                 at=NIGHT1 + pd.Timedelta(days=1, hours=1))
    night1.record_night(scores(NIGHT3, [("d1", 0.9, "red", "rising")]), NIGHT3, "m1")
    d1 = night1.alerts(dispute_id="d1")
    assert list(d1["status"]) == ["raised", "closed"]  # newest first


def test_alert_levels_and_raised_by(store):
    store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1", alert_levels=("red",), raised_by="grid-07")
    a = store.alerts()
    assert list(a["dispute_id"]) == ["d1"] and a["owner"].iloc[0] == "grid-07"
    with pytest.raises(ValueError, match="alert_levels"):
        store.record_night(scores(NIGHT2, NIGHT1_SCORES), NIGHT2, "m1", alert_levels=("blue",))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda df: df.drop(columns="level"), "missing required column"),
        (lambda df: df.assign(level=["red", "purple", "blue", "blue"]), "column 'level' row 1 value 'purple'"),
        (lambda df: df.assign(probability=[0.1, 1.5, 0.2, 0.2]), "column 'probability'"),
        (lambda df: df.assign(dispute_id=["a", "a", "b", "c"]), "one score per dispute"),
        (lambda df: df.assign(as_of=NIGHT2), "column 'as_of'"),
        (lambda df: df.assign(reasons=["not json", "[]", "[]", "[]"]), "column 'reasons'"),
    ],
)
def test_scores_are_validated_at_the_boundary(store, change, match):
    with pytest.raises(ValueError, match=match):
        store.record_night(change(scores(NIGHT1, NIGHT1_SCORES)), NIGHT1, "m1")
    assert store.runs().empty and store.scores().empty


def test_only_known_columns_are_stored(store):
    df = scores(NIGHT1, NIGHT1_SCORES).assign(name="张三", phone="13800000000")
    store.record_night(df, NIGHT1, "m1")
    text = repr(dump(store))
    assert "张三" not in text and "13800000000" not in text


def test_previous_scores_latest_strictly_before(night1):
    night1.record_night(scores(NIGHT2, [("d1", 0.8, "red", "falling")]), NIGHT2, "m1")
    night1.record_night(scores(NIGHT2, [("d1", 0.7, "orange", "falling")]), NIGHT2, "m2")
    prev = night1.previous_scores(["d1", "d2", "never"], before=NIGHT2)
    assert list(prev["dispute_id"]) == ["d1", "d2"]
    assert prev.set_index("dispute_id").loc["d1", "probability"] == 0.91
    later = night1.previous_scores(["d1"], before=NIGHT3)
    assert later["probability"].iloc[0] == 0.7  # the latest recorded on that night
    assert night1.previous_scores(["d1"], before=NIGHT3, model_version="m1")["probability"].iloc[0] == 0.8
    assert night1.previous_scores(["d1"], before=NIGHT1).empty
    assert len(night1.previous_scores(None, before=NIGHT3)) == 4
    assert isinstance(prev["reasons"].iloc[0], list)


# ---------------------------------------------------------------------------
# lifecycle


def test_lifecycle_happy_path(night1):
    a = alert_of(night1, "d2")["alert_id"]
    t = NIGHT1 + pd.Timedelta(hours=8)
    assert night1.assign(a, to="wang", by="chief", note="网格7", at=t)["status"] == "assigned"
    night1.update(a, "in_progress", by="wang", at=t + pd.Timedelta(hours=1))
    night1.update(a, "resolved", by="wang", note="调解达成协议", at=t + pd.Timedelta(days=1))
    night1.update(a, "follow_up", by="wang", at=t + pd.Timedelta(days=8))
    closed = night1.close(a, by="wang", outcome="agreement held", escalated_to_crime=False,
                          note="回访正常", at=t + pd.Timedelta(days=9))
    assert closed["status"] == "closed" and closed["owner"] == "wang"
    assert closed["closed_at"] == t + pd.Timedelta(days=9)
    assert closed["escalated_to_crime"] is False
    ev = closed["events"]
    assert [(e["from_status"], e["to_status"]) for e in ev] == [
        (None, "raised"), ("raised", "assigned"), ("assigned", "in_progress"),
        ("in_progress", "resolved"), ("resolved", "follow_up"), ("follow_up", "closed"),
    ]
    assert [e["who"] for e in ev] == ["system", "chief", "wang", "wang", "wang", "wang"]
    assert ev[1]["owner"] == "wang" and ev[1]["note"] == "网格7"
    assert ev[-1]["note"] == "outcome: agreement held; 回访正常"


def test_whoever_raises_it_follows_it(store):
    store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1", raised_by="li")
    a = alert_of(store, "d1")["alert_id"]
    after = store.update(a, "in_progress", by="li", at=NIGHT1 + pd.Timedelta(hours=1))
    assert after["owner"] == "li"
    # a handover later keeps the status and moves ownership
    after = store.assign(a, to="zhao", by="li", at=NIGHT1 + pd.Timedelta(hours=2))
    assert (after["status"], after["owner"]) == ("in_progress", "zhao")


@pytest.mark.parametrize(
    "steps, requested",
    [
        ([], "resolved"),
        ([], "follow_up"),
        (["escalated"], "resolved"),
        (["in_progress", "resolved"], "escalated"),
    ],
)
def test_illegal_transitions_are_refused_with_a_clear_message(night1, steps, requested):
    a = alert_of(night1, "d1")["alert_id"]
    for s in steps:
        night1.update(a, s, by="wang")
    before = dump(night1)
    current = steps[-1] if steps else "raised"
    with pytest.raises(AlertTransitionError) as err:
        night1.update(a, requested, by="wang")
    msg = str(err.value)
    assert f"alert {a}" in msg and f"'{current}'" in msg and f"'{requested}'" in msg
    for allowed in TRANSITIONS[current] - {"assigned", "closed"}:
        assert allowed in msg
    assert isinstance(err.value, ValueError)
    assert (err.value.current, err.value.requested) == (current, requested)
    assert dump(night1) == before  # no event for a refused change


def test_close_needs_follow_up_and_closed_is_final(night1):
    a = alert_of(night1, "d1")["alert_id"]
    with pytest.raises(AlertTransitionError, match="allowed from 'raised'"):
        night1.close(a, by="wang", outcome="x", escalated_to_crime=None)
    with pytest.raises(AlertTransitionError, match="use close"):
        night1.update(a, "closed", by="wang")
    with pytest.raises(AlertTransitionError, match="use assign"):
        night1.update(a, "assigned", by="wang")
    night1.update(a, "escalated", by="wang")
    night1.update(a, "follow_up", by="wang")
    night1.close(a, by="wang", outcome="crime recorded", escalated_to_crime=True)
    with pytest.raises(AlertTransitionError, match="none"):
        night1.update(a, "in_progress", by="wang")
    with pytest.raises(AlertTransitionError):
        night1.assign(a, to="zhao", by="wang")


def test_unknown_alert_and_bad_arguments(night1):
    with pytest.raises(AlertNotFoundError, match="alert 999"):
        night1.alert(999)
    with pytest.raises(AlertNotFoundError):
        night1.update(999, "in_progress", by="wang")
    a = alert_of(night1, "d1")["alert_id"]
    with pytest.raises(ValueError, match="unknown status"):
        night1.update(a, "done", by="wang")
    with pytest.raises(ValueError, match="outcome"):
        night1.close(a, by="wang", outcome="", escalated_to_crime=None)
    with pytest.raises(ValueError, match="before the alert was raised"):
        night1.update(a, "in_progress", by="wang", at=NIGHT1 - pd.Timedelta(days=1))


def test_events_are_append_only(night1):
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with night1.engine.begin() as conn:
            conn.execute(sa.update(store_module.events_table).values(note="rewritten"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with night1.engine.begin() as conn:
            conn.execute(sa.delete(store_module.events_table))


# ---------------------------------------------------------------------------
# due times, overdue, follow-ups, outcomes


def test_due_times_by_level():
    raised = pd.Timestamp("2025-06-30 15:00")
    # Time counts from when people can act: the morning after the night.
    assert due_at("red", raised) == pd.Timestamp("2025-07-01 23:59:59.999999")
    assert due_at("red", pd.Timestamp("2025-06-30 23:59:59.999999")) == pd.Timestamp("2025-07-01 23:59:59.999999")
    assert due_at("orange", raised) == pd.Timestamp("2025-07-03 23:59:59.999999")
    assert due_at("yellow", raised) == pd.Timestamp("2025-07-07 23:59:59.999999")


def test_overdue_with_fixed_clocks(night1):
    assert night1.overdue("2025-06-30 23:00").empty
    assert night1.overdue("2025-07-01 23:00").empty  # the red alert's day to act
    late = night1.overdue("2025-07-02 08:00")
    assert list(late["dispute_id"]) == ["d1"]
    assert late["overdue_by"].iloc[0] == pd.Timedelta(hours=8, microseconds=1)
    assert list(night1.overdue("2025-07-09")["dispute_id"]) == ["d1", "d2", "d3"]
    # a later night counts it too
    assert night1.record_night(scores(NIGHT2, []), NIGHT2, "m1").overdue == 0
    assert night1.record_night(scores(NIGHT3, []), NIGHT3, "m1").overdue == 1
    a = alert_of(night1, "d1")["alert_id"]
    night1.update(a, "in_progress", by="wang", at="2025-07-02 09:00")
    night1.update(a, "resolved", by="wang", at="2025-07-02 12:00")
    assert list(night1.overdue("2025-07-09")["dispute_id"]) == ["d2", "d3"]


def test_follow_ups_due(night1):
    a = alert_of(night1, "d1")["alert_id"]
    b = alert_of(night1, "d2")["alert_id"]
    night1.update(a, "escalated", by="wang", at="2025-07-01 10:00")
    night1.update(b, "in_progress", by="li", at="2025-07-01 10:00")
    night1.update(b, "resolved", by="li", at="2025-07-03 10:00")
    assert night1.follow_ups_due("2025-07-08 09:00").empty
    due = night1.follow_ups_due("2025-07-08 11:00")
    assert list(due["alert_id"]) == [a]
    assert list(night1.follow_ups_due("2025-07-11", days=7)["alert_id"]) == [a, b]
    assert list(night1.follow_ups_due("2025-07-04 09:00", days=1)["alert_id"]) == [a]
    assert list(night1.follow_ups_due("2025-07-04", days=1)["alert_id"]) == [a, b]  # a date: its end
    night1.update(a, "follow_up", by="wang", at="2025-07-09")
    assert list(night1.follow_ups_due("2025-07-11")["alert_id"]) == [b]


def test_outcomes_for_training(night1):
    assert list(night1.outcomes().columns) == [
        "district", "dispute_id", "alert_id", "raised_at", "closed_at", "outcome", "escalated_to_crime",
    ]
    assert night1.outcomes().empty
    for dispute, crime in (("d1", True), ("d2", None)):
        a = alert_of(night1, dispute)["alert_id"]
        night1.update(a, "escalated", by="wang", at="2025-07-01")
        night1.update(a, "follow_up", by="wang", at="2025-07-08")
        night1.close(a, by="wang", outcome="done", escalated_to_crime=crime, at="2025-07-09")
    out = night1.outcomes()
    assert list(out["dispute_id"]) == ["d1", "d2"]
    assert bool(out["escalated_to_crime"].iloc[0]) is True
    assert pd.isna(out["escalated_to_crime"].iloc[1])
    assert (out["raised_at"] == NIGHT1).all()


# ---------------------------------------------------------------------------
# schema


def test_schema_created_and_versioned(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'alerts.db'}"
    with AlertStore(url) as s:
        assert s.schema_version == SCHEMA_VERSION
        tables = set(sa.inspect(s.engine).get_table_names())
    assert {"schema_version", "scores", "runs", "alerts", "alert_events"} <= tables
    with AlertStore(url) as s:  # reopening creates nothing new
        assert s.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(store_url):
    url = store_url
    with AlertStore(url) as s:
        with s.engine.begin() as conn:
            conn.execute(sa.insert(store_module.schema_version_table).values(
                version=SCHEMA_VERSION + 1, applied_at=pd.Timestamp("2030-01-01").to_pydatetime()))
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        AlertStore(url)


# ---------------------------------------------------------------------------
# command line


@pytest.fixture
def cli_store(store_url, monkeypatch):
    url = store_url
    with AlertStore(url) as s:
        s.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
        ids = {d: int(s.alerts(dispute_id=d)["alert_id"].iloc[0]) for d in ("d1", "d2", "d3")}
    monkeypatch.delenv("ESCALATION_RISK_STORE", raising=False)
    return url, ids


def run(*args, env=None):
    return CliRunner().invoke(alerts_cli, [str(a) for a in args], env=env)


def test_cli_end_to_end(cli_store):
    url, ids = cli_store
    a = ids["d1"]

    listed = run("list", "--store", url)
    assert listed.exit_code == 0, listed.output
    assert "d1" in listed.stdout and "red" in listed.stdout

    as_json = json.loads(run("list", "--store", url, "--format", "json", "--level", "red").stdout)
    assert [r["dispute_id"] for r in as_json] == ["d1"]
    assert as_json[0]["reasons"] == ["邻里纠纷多次调解失败", "近30天两次报警"]

    as_csv = pd.read_csv(io.StringIO(run("list", "--store", url, "--format", "csv").stdout))
    assert sorted(as_csv["dispute_id"]) == ["d1", "d2", "d3"]

    steps = [
        ("assign", a, "--to", "wang", "--by", "chief", "--note", "网格7", "--at", "2025-06-30T08:00"),
        ("update", a, "--status", "in_progress", "--by", "wang", "--at", "2025-06-30T09:00"),
        ("update", a, "--status", "escalated", "--by", "wang", "--note", "交派出所", "--at", "2025-06-30T10:00"),
        ("update", a, "--status", "follow_up", "--by", "wang", "--at", "2025-07-07"),
        ("close", a, "--by", "wang", "--outcome", "case opened", "--escalated", "--at", "2025-07-08"),
    ]
    for step in steps:
        result = run(*step, "--store", url)
        assert result.exit_code == 0, result.output
    assert "closed" in result.stdout

    shown = run("show", a, "--store", url)
    assert shown.exit_code == 0
    # Notes and the outcome are text typed by staff: shown by their lengths only.
    assert "交派出所" not in shown.stdout and "case opened" not in shown.stdout
    assert "note_chars" in shown.stdout and "outcome_chars" in shown.stdout
    detail = json.loads(run("show", a, "--store", url, "--format", "json").stdout)
    assert detail["status"] == "closed" and detail["escalated_to_crime"] is True
    assert len(detail["events"]) == 6
    assert "outcome" not in detail and detail["outcome_chars"] == len("case opened")
    assert [e["note_chars"] for e in detail["events"]][1:3] == [len("网格7"), 0]
    assert all("note" not in e for e in detail["events"])

    outcomes = json.loads(run("outcomes", "--store", url, "--format", "json").stdout)
    # The outcome is text typed by staff: the listing carries its length and the code, never the text.
    assert outcomes == [{
        "district": "", "dispute_id": "d1", "alert_id": a, "raised_at": "2025-06-30T00:00:00",
        "closed_at": "2025-07-08T23:59:59.999999", "outcome_chars": 11, "escalated_to_crime": True,
    }]
    assert "d1" not in run("list", "--store", url).stdout  # closed: not open any more
    assert "d1" in run("list", "--all", "--store", url).stdout


def test_cli_overdue_and_follow_ups(cli_store):
    url, ids = cli_store
    result = run("overdue", "--now", "2025-07-02T08:00", "--store", url)
    assert result.exit_code == 0
    assert "d1" in result.stdout and "d2" not in result.stdout
    assert run("overdue", "--now", "2025-06-30T12:00", "--store", url).stdout.strip() == "no overdue alerts"
    run("update", ids["d2"], "--status", "escalated", "--by", "li", "--at", "2025-07-01", "--store", url)
    due = json.loads(run("follow-ups", "--now", "2025-07-09", "--store", url, "--format", "json").stdout)
    assert [r["dispute_id"] for r in due] == ["d2"]


def test_cli_store_from_environment(cli_store):
    url, _ = cli_store
    result = run("list", "--format", "json", env={"ESCALATION_RISK_STORE": url})
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 3


def test_cli_errors(cli_store):
    url, ids = cli_store
    unknown = run("show", 999, "--store", url)
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: alert 999: no such alert in the store"

    illegal = run("update", ids["d1"], "--status", "closed", "--by", "wang", "--store", url)
    assert illegal.exit_code == 1
    lines = illegal.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot go from 'raised' to 'closed'" in lines[0]
    assert "Traceback" not in illegal.output

    assert run("update", ids["d1"], "--status", "done", "--by", "wang", "--store", url).exit_code == 2
    assert run("assign", ids["d1"], "--by", "wang", "--store", url).exit_code == 2  # no --to
    assert run("show", "not-a-number", "--store", url).exit_code == 2
    assert run("overdue", "--now", "someday", "--store", url).exit_code == 2
    assert run("list", "--store", "not a url").exit_code == 2


def test_cli_refuses_newer_schema(store_url):
    url = store_url
    with AlertStore(url) as s, s.engine.begin() as conn:
        conn.execute(sa.insert(store_module.schema_version_table).values(
            version=SCHEMA_VERSION + 1, applied_at=pd.Timestamp("2030-01-01").to_pydatetime()))
    result = run("list", "--store", url)
    assert result.exit_code == 1 and "newer" in result.stderr


# ---------------------------------------------------------------------------
# districts of a province, concurrency, time zones, migration


def test_districts_are_part_of_every_key(store):
    """Ids are unique inside a district only: d1 of district A and d1 of B are two disputes."""
    a = store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1", district="330102")
    b = store.record_night(scores(NIGHT1, NIGHT1_SCORES[:2]).assign(district="330106"), NIGHT1, "m1")
    assert (a.district, b.district) == ("330102", "330106")
    assert (a.new_alerts, b.new_alerts) == (3, 2) and not b.already_recorded
    alerts = store.alerts()
    assert sorted(zip(alerts["district"], alerts["dispute_id"])) == [
        ("330102", "d1"), ("330102", "d2"), ("330102", "d3"), ("330106", "d1"), ("330106", "d2")]
    assert len(store.alerts(district="330106")) == 2
    # each district's night is idempotent on its own
    assert store.record_night(scores(NIGHT1, NIGHT1_SCORES[:2]), NIGHT1, "m1", district="330106").already_recorded
    # the trend of B's d1 reads B's history only
    store.record_night(scores(NIGHT2, [("d1", 0.2, "yellow", "falling")]), NIGHT2, "m1", district="330106")
    prev = store.previous_scores(["d1"], before=NIGHT3, district="330106")
    assert prev[["district", "dispute_id", "probability"]].values.tolist() == [["330106", "d1", 0.2]]
    both = store.previous_scores(["d1"], before=NIGHT3, district=None)
    assert sorted(both["probability"]) == [0.2, 0.91]
    assert store.previous_scores(["d1"], before=NIGHT3).empty  # '' is a district of its own
    runs = store.runs()
    assert sorted(runs["district"]) == ["330102", "330106", "330106"]
    with pytest.raises(ValueError, match="one district of the night"):
        store.record_night(scores(NIGHT3, NIGHT1_SCORES).assign(district=["x", "x", "y", "y"]), NIGHT3, "m1")


def test_concurrent_nights_of_different_districts(store_url):
    """Eight districts record the same night at once into one store: none fails, none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    rows = [(f"d{i}", 0.5 + i / 1000, "orange", "new") for i in range(300)]
    districts = [f"33{i:04d}" for i in range(8)]
    with AlertStore(store_url) as s:  # schema made once, before the race
        pass

    def night(district):
        with AlertStore(store_url) as s:
            return s.record_night(scores(NIGHT1, rows), NIGHT1, "m1", district=district)

    with ThreadPoolExecutor(max_workers=8) as pool:
        summaries = list(pool.map(night, districts))
    assert [s.new_alerts for s in summaries] == [300] * 8
    with AlertStore(store_url) as s:
        assert len(s.scores()) == 2400 and len(s.alerts(status="open")) == 2400
        assert s.events()["alert_id"].is_unique
        per = s.alerts().groupby("district").size()
        assert per.to_dict() == dict.fromkeys(districts, 300)


def test_times_are_instants_in_the_store(store_url):
    """The store keeps instants: a reader in another zone sees the same moment in its own time."""
    with AlertStore(store_url, timezone="Asia/Shanghai") as s:
        s.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
        a = alert_of(s, "d1")
        assert a["raised_at"] == NIGHT1  # naive local time in, the same out
        with s.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT raised_at FROM alerts WHERE dispute_id = 'd1'")).scalar_one()
        if s.engine.dialect.name == "postgresql":
            assert stored.tzinfo is not None  # timestamp with time zone
            assert stored == pd.Timestamp("2025-06-29 16:00", tz="UTC")
        else:
            assert str(stored).startswith("2025-06-29 16:00:00")  # UTC text
    with AlertStore(store_url, timezone="UTC") as s:
        assert alert_of(s, "d1")["raised_at"] == pd.Timestamp("2025-06-29 16:00")
        # comparisons are between instants too
        assert len(s.overdue(now=pd.Timestamp("2025-07-01 16:00"))) == 1  # red: due by 2025-07-01 15:59:59 UTC
        assert s.overdue(now=pd.Timestamp("2025-07-01 15:00")).empty


def _v1_metadata() -> sa.MetaData:
    """The schema 1 tables: no district, naive timestamps."""
    md = sa.MetaData()
    for t in (store_module.schema_version_table, store_module.scores_table, store_module.runs_table,
              store_module.alerts_table, store_module.events_table):
        cols = []
        for c in t.columns:
            if c.name in ("district", "input_fingerprint", "reasons_zh"):  # added by schemas 2 and 3
                continue
            kind = sa.DateTime() if isinstance(c.type, store_module._Instant) else c.type
            fks = [sa.ForeignKey("alerts.alert_id")] if c.foreign_keys else []
            cols.append(sa.Column(c.name, kind, *fks, primary_key=c.primary_key, nullable=c.nullable,
                                  autoincrement=c.autoincrement))
        sa.Table(t.name, md, *cols)
    return md


def test_schema_1_store_is_migrated(store_url):
    engine = sa.create_engine(store_url)
    md = _v1_metadata()
    md.create_all(engine)
    at = pd.Timestamp("2025-06-30").to_pydatetime()
    with engine.begin() as conn:
        conn.execute(sa.insert(md.tables["schema_version"]).values(version=1, applied_at=at))
        conn.execute(sa.insert(md.tables["scores"]).values(
            score_id=1, dispute_id="d1", as_of=at, model_version="m1", probability=0.9, level="red", trend="new",
            delta=None, reasons="[]", plan="p"))
        conn.execute(sa.insert(md.tables["alerts"]).values(
            alert_id=7, dispute_id="d1", model_version="m1", level="red", probability=0.9, trend="new", delta=None,
            reasons="[]", plan="p", status="raised", owner="system", raised_by="system", raised_at=at,
            due_at=pd.Timestamp("2025-06-30 23:59:59").to_pydatetime(), updated_at=at, status_at=at,
            last_as_of=at))
        conn.execute(sa.insert(md.tables["alert_events"]).values(
            event_id=1, alert_id=7, at=at, who="system", event="raised", to_status="raised", owner="system",
            note=""))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="escalation-risk store upgrade"):
        AlertStore(store_url)  # an old store is upgraded on purpose, not on opening
    store_module.upgrade_store(store_url)
    with AlertStore(store_url) as s:
        assert s.schema_version == SCHEMA_VERSION
        a = s.alert(7)
        assert (a["district"], a["raised_at"], [e["event"] for e in a["events"]]) == ("", NIGHT1, ["raised"])
        assert s.scores()["district"].tolist() == [""]
        # the migrated store works on: a new night updates the old alert, new ids follow the old ones
        s.record_night(scores(NIGHT2, [("d1", 0.95, "red", "rising"), ("d9", 0.9, "red", "new")]), NIGHT2, "m1")
        assert alert_of(s, "d1")["alert_id"] == 7 and alert_of(s, "d9")["alert_id"] > 7
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with s.engine.begin() as conn:
                conn.execute(sa.delete(store_module.events_table))


# ---------------------------------------------------------------------------
# corrected exports, order, the recording lock (issue 14)


def test_check_night_answers_as_record_night_and_writes_nothing(store):
    first = scores(NIGHT2, NIGHT1_SCORES)
    kw = {"input_fingerprint": "a" * 64, "key_fingerprint": "k" * 16, "district": "330103"}
    assert store.check_night(first, NIGHT2, "m1", **kw) is None  # a new night: may be recorded
    assert dump(store)["runs"] == []
    recorded = store.record_night(first, NIGHT2, "m1", **kw)
    before = dump(store)
    again = store.check_night(first, NIGHT2, "m1", **kw)
    assert again is not None and again.already_recorded and again.n_scored == recorded.n_scored
    refusals = [  # (arguments, the refusal both give)
        ({**kw, "input_fingerprint": "b" * 64}, "^district 330103: night .*different input.*--replace"),
        ({**kw, "input_fingerprint": "b" * 64, "as_of": NIGHT1},
         "^district 330103: night 2025-06-30T00:00:00 is older.*--backfill"),
        ({**kw, "key_fingerprint": "z" * 16}, "another pseudonym key"),
    ]
    for args, refusal in refusals:
        night = args.pop("as_of", NIGHT2)
        with pytest.raises(NightConflictError, match=refusal):
            store.check_night(scores(night, NIGHT1_SCORES), night, "m1", **args)
        with pytest.raises(NightConflictError, match=refusal):
            store.record_night(scores(night, NIGHT1_SCORES), night, "m1", **args)
    assert dump(store) == before
    # what the flags allow, the check allows, and still writes nothing
    assert store.check_night(first, NIGHT2, "m1", **{**kw, "input_fingerprint": "b" * 64}, replace=True) is None
    assert store.check_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1", **kw, backfill=True) is None
    assert dump(store) == before


def test_same_input_is_a_no_op_changed_input_is_refused_and_replace_keeps_the_old(store):
    first = scores(NIGHT1, NIGHT1_SCORES)
    store.record_night(first, NIGHT1, "m1", input_fingerprint="a" * 64)
    again = store.record_night(first, NIGHT1, "m1", input_fingerprint="a" * 64)
    assert again.already_recorded
    corrected = scores(NIGHT1, [("d1", 0.20, "blue", "new"), ("d9", 0.93, "red", "new")])
    with pytest.raises(NightConflictError, match="different input.*--replace"):
        store.record_night(corrected, NIGHT1, "m1", input_fingerprint="b" * 64)
    assert set(store.scores()["dispute_id"]) == {r[0] for r in NIGHT1_SCORES}  # nothing written
    summary = store.record_night(corrected, NIGHT1, "m1", input_fingerprint="b" * 64, replace=True)
    assert not summary.already_recorded and summary.n_scored == 2
    assert set(store.scores()["dispute_id"]) == {"d1", "d9"}
    old = store.replaced_runs()
    assert len(old) == 1 and old["input_fingerprint"].iloc[0] == "a" * 64
    assert old["replaced_by_fingerprint"].iloc[0] == "b" * 64 and old["n_scored"].iloc[0] == len(NIGHT1_SCORES)
    with store.engine.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(store_module.replaced_scores_table)).scalar()
    assert kept == len(NIGHT1_SCORES)
    # The alert raised the first time is still there, now showing the corrected score.
    assert alert_of(store, "d1")["level"] == "blue"


def test_recording_lock_is_per_store_and_reentrant(tmp_path):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    with AlertStore(url) as a, AlertStore(url) as b, AlertStore(f"sqlite:///{tmp_path / 'other.db'}") as c:
        with a.recording_lock():
            with a.recording_lock():  # the nightly job holds it around record_night
                pass
            with pytest.raises(StoreBusyError, match="another night is being recorded"):
                with b.recording_lock(timeout=0.3):
                    pass
            with pytest.raises(StoreBusyError):
                b.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
            with c.recording_lock():  # another store is not held up
                pass
        b.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1")
        assert b.last_night() == NIGHT1


def test_both_languages_are_kept_and_notes_are_masked(store):
    df = scores(NIGHT1, [("d1", 0.91, "red", "new")])
    df["reasons_zh"] = [["双方近30天报警 2 次"]]
    store.record_night(df, NIGHT1, "m1")
    a = alert_of(store, "d1")
    assert list(store.scores()["reasons_zh"].iloc[0]) == ["双方近30天报警 2 次"]
    assert a["reasons_zh"] == ["双方近30天报警 2 次"] and a["reasons"] == ["邻里纠纷多次调解失败", "近30天两次报警"]
    store.assign(a["alert_id"], to="li", by="wang", note="call her on 13812345678, id 11010519491231002X",
                 at=NIGHT1 + pd.Timedelta(hours=1))
    note = store.events(a["alert_id"])["note"].iloc[-1]
    assert "13812345678" not in note and "11010519491231002X" not in note and "[phone]" in note


def test_a_version_1_store_is_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store as schema 1 wrote it
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DATETIME)"))
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1, '2025-01-01 00:00:00')"))
        conn.execute(sa.text(
            "CREATE TABLE runs (run_id INTEGER PRIMARY KEY, as_of DATETIME NOT NULL, model_version VARCHAR(128) "
            "NOT NULL, started_at DATETIME NOT NULL, finished_at DATETIME, n_scored INTEGER NOT NULL, n_red INTEGER "
            "NOT NULL, n_orange INTEGER NOT NULL, n_yellow INTEGER NOT NULL, n_blue INTEGER NOT NULL, n_new_alerts "
            "INTEGER NOT NULL, n_updated_alerts INTEGER NOT NULL, n_rising INTEGER NOT NULL, n_overdue INTEGER "
            "NOT NULL, CONSTRAINT uq_runs_night UNIQUE (as_of, model_version))"))
        for table in ("scores", "alerts", "alert_events"):
            ddl = sa.schema.CreateTable(store_module.metadata.tables[table]).compile(engine)
            text = str(ddl).replace("\treasons_zh TEXT, \n", "")
            conn.execute(sa.text(text))
    engine.dispose()
    store_module.upgrade_store(url)
    with AlertStore(url) as s:
        assert s.schema_version == SCHEMA_VERSION
        s.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1", input_fingerprint="c" * 64)
        assert s.last_night() == NIGHT1


# ---------------------------------------------------------------------------
# the store knows its pseudonym key

KEY_A, KEY_B = "a1" * 8, "b2" * 8  # fingerprints (pseudonym_keys.key_fingerprint), not keys


def test_a_night_under_another_pseudonym_key_is_refused_by_name(store):
    from escalation_risk.alerts import StoreKeyError

    store.record_night(scores(NIGHT1, NIGHT1_SCORES), NIGHT1, "m1", input_fingerprint="f" * 64,
                       key_fingerprint=KEY_A)
    before = dump(store)
    assert store.runs()["key_fingerprint"].tolist() == [KEY_A]
    attempts = [
        dict(as_of=NIGHT1, input_fingerprint="g" * 64),  # the same night re-run with another key
        dict(as_of=NIGHT1, input_fingerprint="g" * 64, replace=True),  # even with replace
        dict(as_of=NIGHT2, input_fingerprint="h" * 64),  # a new night with another key
    ]
    for kw in attempts:
        night = kw.pop("as_of")
        with pytest.raises(StoreKeyError, match="this store was recorded with another pseudonym key") as err:
            store.record_night(scores(night, NIGHT1_SCORES), night, "m1", key_fingerprint=KEY_B, **kw)
        assert "replace" not in str(err.value) and KEY_A in str(err.value)
        assert dump(store) == before  # nothing was written
    # the store's own key goes on; a caller that names no key is not checked (older callers)
    assert not store.record_night(scores(NIGHT2, NIGHT1_SCORES), NIGHT2, "m1", key_fingerprint=KEY_A).already_recorded
    assert not store.record_night(scores(NIGHT3, NIGHT1_SCORES), NIGHT3, "m1").already_recorded


def test_cli_close_echoes_only_the_masked_outcome(cli_store):
    url, ids = cli_store
    a = ids["d1"]
    for step in (("update", a, "--status", "in_progress", "--by", "wang"),
                 ("update", a, "--status", "resolved", "--by", "wang"),
                 ("update", a, "--status", "follow_up", "--by", "wang")):
        assert run(*step, "--store", url).exit_code == 0
    result = run("close", a, "--by", "wang", "--outcome", "agreed; call 13812345678 or 110101198001011234",
                 "--not-escalated", "--store", url)
    assert result.exit_code == 0, result.output
    assert "13812345678" not in result.output and "110101198001011234" not in result.output
    assert "characters" in result.output and "agreed" not in result.output
