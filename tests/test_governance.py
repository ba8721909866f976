"""The governance index: every indicator's known answer on a hand-built district and store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY

from escalation_risk import AlertStore, Dataset
from escalation_risk.governance import NOT_ENOUGH_DATA, escalations, governance_index

AS_OF = "2024-08-31"


def _district_tables() -> dict[str, pd.DataFrame]:
    """Grid g1: 20 disputes in March 2024 (d0..d19) and 10 in April (d20..d29); grid g2
    (another town): 2 disputes in March (d30, d31). Each dispute has its own two people
    (a<i>, b<i>), except d19, which repeats d18's pair.

    - d0 escalates: crime k0 names it (related_incident_id), occurred 2024-03-20.
    - d1 escalates: crime k1 shares person a1, occurred 2024-03-25.
    - d2 does not: closed 2024-03-05, crime k2 (shares a2) on 2024-07-01, after 90 days.
    - d3 does not: crime k3 (shares a3) occurred before d3 was reported.
    Sources in March: d0-d4 grid_worker, d5-d9 walk_in, d10-d11 hotline_12345, d12-d19
    police_110 (12 of 20 by residents); April all police_110.
    Mediations (g1, March): agreement, partial, failed, agreement, pending.
    """
    n = 32
    grid = ["g1"] * 30 + ["g2"] * 2
    reported = ([pd.Timestamp("2024-03-01") + pd.Timedelta(hours=12 * i) for i in range(20)]
                + [pd.Timestamp("2024-04-01") + pd.Timedelta(days=i) for i in range(10)]
                + [pd.Timestamp("2024-03-05"), pd.Timestamp("2024-03-06")])
    sources = (["grid_worker"] * 5 + ["walk_in"] * 5 + ["hotline_12345"] * 2 + ["police_110"] * 8
               + ["police_110"] * 10 + ["walk_in", "police_110"])
    closed: list = [None] * n
    closed[2] = pd.Timestamp("2024-03-05")
    persons = [f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)]
    disputes = pd.DataFrame({
        "incident_id": [f"d{i}" for i in range(n)], "kind": "dispute", "category": "neighbor",
        "occurred_at": reported, "reported_at": reported,
        "place_id": ["pl1" if g == "g1" else "pl2" for g in grid], "source": sources,
        "status": ["closed" if c is not None else "open" for c in closed], "closed_at": closed,
        "related_incident_id": None})
    crimes = pd.DataFrame({
        "incident_id": ["k0", "k1", "k2", "k3"], "kind": "criminal_case", "category": "assault",
        "occurred_at": pd.to_datetime(["2024-03-20", "2024-03-25", "2024-07-01", "2024-02-01"]),
        "reported_at": pd.to_datetime(["2024-03-20", "2024-03-25", "2024-07-01", "2024-02-01"]),
        "place_id": "pl1", "source": "police_110", "status": "closed", "closed_at": None,
        "related_incident_id": ["d0", None, None, None]})
    parties = []
    for i in range(n):
        a, b = (f"a{i}", f"b{i}") if i != 19 else ("a18", "b18")
        parties += [(f"d{i}", a, "complainant"), (f"d{i}", b, "respondent")]
    parties += [("k0", "x0", "suspect"), ("k1", "a1", "suspect"), ("k2", "a2", "suspect"), ("k3", "a3", "suspect")]
    parties_df = pd.DataFrame(parties, columns=["incident_id", "party_id", "role"]).assign(party_type="person")
    mediations = pd.DataFrame({
        "mediation_id": [f"m{i}" for i in range(5)], "incident_id": ["d10", "d11", "d12", "d13", "d14"],
        "held_at": pd.to_datetime(["2024-03-10"] * 5), "mediator_type": "people_mediation_committee",
        "outcome": ["agreement", "partial", "failed", "agreement", "pending"]})
    people = pd.DataFrame({"person_id": persons + ["x0"], "birth_year": 1980, "gender": "male",
                           "hukou": "local", "employment": "employed"})
    places = pd.DataFrame({"place_id": ["pl1", "pl2"], "grid_id": ["g1", "g2"], "town": ["t1", "t2"],
                           "district": ["dd", "dd"], "place_type": "residential", "lat": None, "lon": None})
    return dict(persons=people, places=places, incidents=pd.concat([disputes, crimes], ignore_index=True),
                incident_parties=parties_df, mediations=mediations)


def _scores(levels: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"dispute_id": list(levels), "probability": [0.5] * len(levels),
                         "level": list(levels.values()), "trend": "new", "delta": None,
                         "reasons": [["r"]] * len(levels), "plan": "p"})


def _store(url: str = "sqlite://") -> AlertStore:
    """Alerts on g1's March disputes, handled at known times.

    Night 2024-03-15: d0 red (resolved the same day: on time), d4 orange (resolved
    2024-03-20, after its due 03-18: late), d5 yellow (escalated 03-16: on time; follow-up
    03-25), d6 red (never touched: overdue). Night 2024-03-26: d1 red (after its crime;
    resolved that day: on time).
    """
    st = AlertStore(url)
    st.record_night(_scores({"d0": "red", "d4": "orange", "d5": "yellow", "d6": "red"}), pd.Timestamp("2024-03-15"),
                    "m1")
    ids = st.alerts().set_index("dispute_id")["alert_id"]
    st.update(ids["d0"], "in_progress", by="w", at="2024-03-15T09:00")
    st.update(ids["d0"], "resolved", by="w", at="2024-03-15T20:00")
    st.update(ids["d4"], "in_progress", by="w", at="2024-03-16")
    st.update(ids["d4"], "resolved", by="w", at="2024-03-20")
    st.update(ids["d5"], "escalated", by="w", at="2024-03-16")
    st.update(ids["d5"], "follow_up", by="w", at="2024-03-25")
    st.record_night(_scores({"d1": "red"}), pd.Timestamp("2024-03-26"), "m1")
    d1 = st.alerts(dispute_id="d1")["alert_id"].iloc[0]
    st.update(d1, "in_progress", by="w", at="2024-03-26T08:00")
    st.update(d1, "resolved", by="w", at="2024-03-26T18:00")
    return st


@pytest.fixture(scope="module")
def district() -> Dataset:
    return Dataset.from_frames(pseudonym_key=KEY, **_district_tables())


@pytest.fixture(scope="module")
def store():
    st = _store()
    yield st
    st.dispose()


def _row(g: pd.DataFrame, unit: str, period: str, indicator: str) -> pd.Series:
    m = (g["unit"] == unit) & (g["period"].astype(str) == period) & (g["indicator"] == indicator)
    assert m.sum() == 1, (unit, period, indicator)
    return g[m].iloc[0]


def test_escalations_follow_the_rule(district):
    e = escalations(district, as_of=AS_OF)
    assert dict(zip(e["dispute_id"], e["crime_id"])) == {"d0": "k0", "d1": "k1"}
    # Before k1 was reported, only d0 had escalated.
    assert list(escalations(district, as_of="2024-03-22")["dispute_id"]) == ["d0"]


def test_each_indicator_known_answer(district, store):
    g = governance_index(district, store, by="grid", period="M", as_of=AS_OF, min_denominator=2)
    r = _row(g, "g1", "2024-03", "risk_perception")
    assert (r.numerator, r.denominator, r.score) == (1, 2, 50.0)   # d0 alerted 5 days ahead, d1 after
    assert r.detail == {"median_lead_days": 5.0}
    r = _row(g, "g1", "2024-03", "closed_loop")
    assert (r.numerator, r.denominator, r.score) == (3, 5, 60.0)   # d0, d5, d1 on time; d4 late; d6 never
    assert r.detail == {"overdue": 1, "handled": 4, "followed_up": 1}
    r = _row(g, "g1", "2024-03", "effectiveness")
    assert (r.numerator, r.denominator, r.value, r.score) == (2, 20, 100.0, 50.0)
    assert r.detail == {"repeat_disputes": 1}
    r = _row(g, "g1", "2024-03", "participation")
    assert (r.numerator, r.denominator, r.score) == (12, 20, 60.0)
    r = _row(g, "g1", "2024-03", "evaluation")
    assert (r.numerator, r.denominator, r.score) == (2.5, 4, 62.5)
    r = _row(g, "g1", "2024-03", "composite")
    assert r.score == pytest.approx(0.25 * 50 + 0.25 * 60 + 0.20 * 50 + 0.15 * 60 + 0.15 * 62.5)
    # April: no escalation, every dispute first met as a police call.
    r = _row(g, "g1", "2024-04", "effectiveness")
    assert (r.numerator, r.denominator, r.score, r.change) == (0, 10, 100.0, 50.0)
    r = _row(g, "g1", "2024-04", "participation")
    assert (r.score, r.change) == (0.0, -60.0)
    # Grid g2: one of two disputes brought by residents.
    r = _row(g, "g2", "2024-03", "participation")
    assert (r.numerator, r.denominator, r.score) == (1, 2, 50.0)


def test_not_enough_data_below_threshold(district, store):
    import escalation_risk as er
    g = er.governance_index(district, store, by="grid", period="M", as_of=AS_OF)   # min 10
    r = _row(g, "g1", "2024-03", "risk_perception")
    assert r.status == NOT_ENOUGH_DATA and np.isnan(r.score) and np.isnan(r.value)
    assert (r.numerator, r.denominator) == (1, 2)   # still traceable
    assert _row(g, "g2", "2024-03", "participation").status == NOT_ENOUGH_DATA
    r = _row(g, "g1", "2024-03", "participation")
    assert (r.status, r.score) == ("ok", 60.0)
    # Only effectiveness and participation (0.35 of the weight) have a score: no composite.
    r = _row(g, "g1", "2024-03", "composite")
    assert r.status == NOT_ENOUGH_DATA and np.isnan(r.score)


def test_units_roll_up_and_time_is_respected(district, store):
    g = governance_index(district, store, by="district", period="M", as_of=AS_OF, min_denominator=2)
    r = _row(g, "dd", "2024-03", "participation")
    assert (r.numerator, r.denominator) == (13, 22)
    # On 2024-03-17 d4 (due 03-18) is not yet judged and d1's alert does not exist.
    early = governance_index(district, store, by="grid", as_of="2024-03-17", min_denominator=1)
    r = _row(early, "g1", "2024-03", "closed_loop")
    assert (r.numerator, r.denominator) == (1, 2)   # d0 on time, d6 due 03-15 and untouched
    assert r.detail["overdue"] == 1
    r = _row(early, "g1", "2024-03", "risk_perception")
    assert r.denominator == 0 and r.status == NOT_ENOUGH_DATA   # no crime yet


def test_risk_perception_counts_from_the_stores_first_night(district):
    # A store that began on 2024-03-22: d0's crime (03-20) came before it, d1's (03-25) after.
    with AlertStore("sqlite://") as st:
        st.record_night(_scores({"d1": "orange"}), pd.Timestamp("2024-03-22"), "m1")
        g = governance_index(district, st, as_of=AS_OF, min_denominator=1)
    r = _row(g, "g1", "2024-03", "risk_perception")
    assert (r.numerator, r.denominator, r.score) == (1, 1, 100.0)
    assert r.detail == {"median_lead_days": 3.0}


def test_effectiveness_waits_for_the_horizon(district, store):
    # On 2024-05-15 no March dispute has had its 90 days: no rate yet, not a flattering 0.
    g = governance_index(district, store, as_of="2024-05-15", min_denominator=1)
    r = _row(g, "g1", "2024-03", "effectiveness")
    assert r.denominator == 0 and r.status == NOT_ENOUGH_DATA and np.isnan(r.score)
    # Participation needs no horizon.
    assert _row(g, "g1", "2024-03", "participation").denominator == 20


def test_without_store_the_store_dimensions_say_so(district):
    g = governance_index(district, None, as_of=AS_OF, min_denominator=2)
    assert set(g.loc[g["indicator"].isin(["risk_perception", "closed_loop"]), "status"]) == {"no alert store"}
    # An empty store has recorded no night: nothing to judge yet, rather than a score of 0.
    with AlertStore("sqlite://") as empty:
        g = governance_index(district, empty, as_of=AS_OF, min_denominator=2)
    for ind in ("risk_perception", "closed_loop"):
        r = _row(g, "g1", "2024-03", ind)
        assert r.denominator == 0 and r.status == NOT_ENOUGH_DATA


def test_bad_arguments_are_named(district):
    with pytest.raises(ValueError, match="by"):
        governance_index(district, by="street")
    with pytest.raises(ValueError, match="period"):
        governance_index(district, period="fortnight")


def test_cli_csv_and_json(district, tmp_path):
    from escalation_risk.cli import main
    data = tmp_path / "data"
    district.write(data)
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    _store(url).dispose()
    runner = CliRunner(env={"ESCALATION_RISK_PSEUDONYM_KEY": KEY})
    res = runner.invoke(main, ["governance", str(data), "--store", url, "--by", "grid", "--period", "M",
                               "--as-of", AS_OF, "--min-denominator", "2", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    r = next(x for x in rows if x["unit"] == "g1" and x["period"] == "2024-03" and x["indicator"] == "closed_loop")
    assert (r["numerator"], r["denominator"], r["score"]) == (3, 5, 60.0)
    res = runner.invoke(main, ["governance", str(data), "--store", url, "--as-of", AS_OF, "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith("by,unit,period,indicator,name_zh")
    assert NOT_ENOUGH_DATA in res.output
    res = runner.invoke(main, ["governance", str(data), "--by", "street"])
    assert res.exit_code == 2


@pytest.mark.parametrize("as_of", ["2024-06-30", "2025-03-15"])
def test_full_export_equals_cut_export(small_district, as_of):
    """With late facts (parties added later, outcomes recorded later, closings), the index
    at as_of reads nothing after it: the full export gives what the export cut at as_of gives."""
    from escalation_risk.clock import to_moment
    ds = small_district
    assert ds.incident_parties["added_at"].notna().any()
    t = to_moment(as_of)
    full = governance_index(ds, by="town", as_of=as_of)
    cut = governance_index(ds.cut(t), by="town", as_of=as_of)
    pd.testing.assert_frame_equal(full, cut)
    e_full, e_cut = escalations(ds, as_of=as_of), escalations(ds.cut(t), as_of=as_of)
    assert len(e_full) > 5
    pd.testing.assert_frame_equal(e_full, e_cut)
