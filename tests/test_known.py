"""What is known at t (contract 1.1).

- Known answers for each new rule on the hand-built district of ``conftest.late_tables``.
- The point-in-time property over random moments on a generated district holding every
  kind of late fact, against a cut written here from the contract's rules (independent
  of ``escalation_risk.known`` and ``Dataset.cut``).
- 1.0 files still load and give the features they gave before contract 1.1.
- The online path reads parties, outcomes and notes like the batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import KEY, late_tables, tiny_tables
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation_risk import Dataset, build_graph, load_dataset, make_labels
from escalation_risk.contract import CONTRACT_1_1, CONTRACT_VERSION, TABLES
from escalation_risk.features import (
    REGISTRY,
    TextModel,
    build_features,
    compute_features,
    history_index,
    points_from_history,
    points_from_records,
)
from escalation_risk.features.text_model import point_texts
from escalation_risk.known import open_at, tie_members, time_varying_facts
from escalation_risk.synth import generate_tables

GOLDEN = Path(__file__).parent / "data" / "features_1_0.parquet"


@pytest.fixture(scope="module")
def late_ds() -> Dataset:
    return Dataset.from_frames(pseudonym_key=KEY, **late_tables())


def _feat(ds: Dataset, dispute_id: str, as_of) -> pd.Series:
    return build_features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [pd.Timestamp(as_of)]})).iloc[0]


# ----------------------------------------------------------------------------- known answers

def test_contract_version_and_doc():
    assert CONTRACT_VERSION == "1.1"
    doc = (Path(__file__).parents[1] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert doc.startswith("# Data contract 1.1")
    for name, cols in CONTRACT_1_1.items():
        assert f"## {name}" in doc and name in TABLES
        assert all(f"| {c} |" in doc for c in cols)


def test_party_added_after_as_of_is_not_counted(late_ds):
    before, after = _feat(late_ds, "d1", "2024-04-21T23:00:00"), _feat(late_ds, "d1", "2024-04-22")
    assert before["n_person_parties"] == 2 and after["n_person_parties"] == 3
    # p4 (the neighbour, a man of 34) counts among the people only once on the dispute.
    assert before["n_male"] == 1 and after["n_male"] == 2 and after["age_min"] == 34
    # On the 1.0 district (no added_at) he was never a party of d1.
    assert _feat(Dataset.from_frames(pseudonym_key=KEY, **tiny_tables()), "d1", "2024-04-25")["n_person_parties"] == 2


def test_outcome_recorded_after_as_of_is_pending(late_ds):
    x = _feat(late_ds, "d1", "2024-04-01")
    # m2 (held 03-20, failed) is typed in only on 04-10: held, outcome pending.
    assert x["mediations"] == 2 and x["mediations_failed"] == 1 and x["last_mediation_failed"] == 0
    y = _feat(late_ds, "d1", "2024-04-10")
    assert y["mediations_failed"] == 2 and y["last_mediation_failed"] == 1


def test_attribute_changed_after_as_of_keeps_its_old_value(late_ds):
    # p1 lost his job on 2024-04-15; the export says unemployed.
    assert _feat(late_ds, "d1", "2024-04-10")["n_unemployed"] == 0
    assert _feat(late_ds, "d1", "2024-04-16")["n_unemployed"] == 1


def test_person_with_attribute_rows_only_after_as_of_is_unknown(late_ds):
    # p4's only hukou row is from 2024-05-01: unknown before, migrant from then.
    assert _feat(late_ds, "d2", "2024-04-25")["n_migrant"] == 0
    assert _feat(late_ds, "d2", "2024-05-01")["n_migrant"] == 1
    # Without person_attributes the export value holds throughout (1.0 behaviour).
    assert _feat(Dataset.from_frames(pseudonym_key=KEY, **tiny_tables()), "d2", "2024-04-25")["n_migrant"] == 1


def test_notes_recorded_by_as_of_shape_the_text(late_ds):
    x = _feat(late_ds, "d1", "2024-04-01")
    assert x["notes"] == 1 and x["notes_danger"] == 0 and x["latest_note_danger"] == 0
    assert x["text_weapon"] == 0 and x["text_threat"] == 1      # the description's own threat
    y = _feat(late_ds, "d1", "2024-04-22T10:00:00")              # the note after the crime: a knife
    assert y["notes"] == 2 and y["notes_danger"] == 1 and y["latest_note_danger"] == 1 and y["text_weapon"] == 1
    assert _feat(late_ds, "d3", "2024-04-05")["text_threat"] == 0
    z = _feat(late_ds, "d3", "2024-04-06")
    assert z["text_threat"] == 1 and z["notes"] == 1 and z["latest_note_danger"] == 1
    # Every new feature has its sentences.
    for name in ("notes", "notes_danger", "latest_note_danger"):
        assert REGISTRY[name].en and REGISTRY[name].zh


def test_cut_applies_every_rule(late_ds):
    c = late_ds.cut("2024-04-12")
    assert "p4" not in set(c.incident_parties.query("incident_id == 'd1'")["party_id"])
    med = c.mediations.set_index("mediation_id")
    assert med.loc["m2", "outcome"] == "failed"                  # typed in on 04-10
    c = late_ds.cut("2024-04-01")
    med = c.mediations.set_index("mediation_id")
    assert med.loc["m2", "outcome"] == "pending" and pd.isna(med.loc["m2", "outcome_at"])
    persons = c.persons.set_index("person_id")
    assert persons.loc["p1", "employment"] == "employed" and persons.loc["p4", "hukou"] == "unknown"
    assert persons.loc["p3", "employment"] == "unemployed"       # no rows: the export value
    assert list(c.incident_notes["note_id"]) == ["n1"] and list(c.person_attributes["person_id"]) == ["p1"]
    assert c.incident_parties["added_at"].isna().all()


def test_graph_as_of_leaves_out_late_parties_and_later_attributes(late_ds):
    def party_of_d1(G):
        return {G.nodes[u]["person_ids"][0] for u, _, k in G.in_edges("incident:d1", data="type")
                if k == "party_to" and u.startswith("person:")}
    g0, g1 = build_graph(late_ds, as_of="2024-04-21"), build_graph(late_ds, as_of="2024-04-23")
    assert "p4" not in party_of_d1(g0) and "p4" in party_of_d1(g1)
    g_early = build_graph(late_ds, as_of="2024-04-10")
    p1 = next(n for n, d in g0.nodes(data=True) if d.get("type") == "person" and "p1" in d["person_ids"])
    assert g_early.nodes[p1]["employment"] == "employed" and g0.nodes[p1]["employment"] == "unemployed"


def test_label_counts_a_party_once_added_by_the_horizon_end():
    t = late_tables()
    t["incidents"] = pd.concat([t["incidents"], pd.DataFrame({
        "incident_id": ["k2", "c9"], "kind": ["criminal_case", "police_call"], "category": ["assault", "other"],
        "occurred_at": ["2024-05-10", "2024-12-01"], "reported_at": ["2024-05-10", "2024-12-01"],
        "place_id": ["pl3", "pl3"], "source": ["police_110", "police_110"], "status": ["closed", "closed"],
        "closed_at": [None, None], "amount": [None, None], "description": ["打架", "噪音"],
        "related_incident_id": [None, None]})], ignore_index=True)
    pts = pd.DataFrame({"dispute_id": ["d3"], "as_of": [pd.Timestamp("2024-04-05")]})

    def label(added_at):
        tt = dict(t)
        tt["incident_parties"] = pd.concat([t["incident_parties"], pd.DataFrame({
            "incident_id": ["d3", "k2"], "party_id": ["p2", "p2"], "party_type": ["person", "person"],
            "role": ["other", "suspect"], "added_at": [added_at, None]})], ignore_index=True)
        return make_labels(Dataset.from_frames(pseudonym_key=KEY, **tt), pts).iloc[0]

    assert label("2024-06-01") == 1.0       # on the dispute before the horizon closed (07-04)
    assert label("2024-09-01") == 0.0       # added after: the data did not know it then


def test_group_cap_is_judged_at_each_arrival():
    # Group 7: 3 people at the report, then 60 more; group 8: 60 at once.
    g = np.r_[np.full(63, 7), np.full(60, 8)]
    p = np.r_[np.arange(63), np.arange(60)]
    t = np.r_[0, 0, 0, np.arange(1, 61), np.zeros(60, np.int64)]
    mg, mp, mt = tie_members(g, p, t, cap=50)
    assert set(mp[mg == 7]) == set(range(50)) and (mg == 8).sum() == 0
    # Duplicate rows of one person count once, from the earliest.
    mg, mp, mt = tie_members(np.array([1, 1, 1]), np.array([5, 5, 6]), np.array([3, 1, 2]), cap=2)
    assert sorted(zip(mp.tolist(), mt.tolist())) == [(5, 1), (6, 2)]


def test_open_at_one_rule_for_frames_and_seconds():
    rep = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01"]))
    closed = pd.Series(pd.to_datetime(["2024-01-10", None, None]))
    assert open_at(rep, closed, pd.Timestamp("2024-01-10")).tolist() == [False, True, False]
    never = np.int64(1 << 40)
    assert open_at(np.array([0, 0]), np.array([10, never]), 10).tolist() == [False, True]


def test_time_varying_facts_say_what_was_dated(late_ds):
    facts = time_varying_facts(late_ds.tables())
    assert any(f.startswith("person_attributes: 3 rows") for f in facts)
    assert any("1 parties dated" in f for f in facts) and any("1 outcomes dated" in f for f in facts)
    old = time_varying_facts(Dataset.from_frames(pseudonym_key=KEY, **tiny_tables()).tables())
    assert "no person_attributes: hukou and employment taken as unchanged (their export-time values)" in old
    assert sum(f.startswith("no ") for f in old) == 4


# ----------------------------------------------------------------------------- the point-in-time property

def expected_cut(raw: dict[str, pd.DataFrame], when) -> dict[str, pd.DataFrame]:
    """The export as it stood at ``when``, written from the data contract's text alone."""
    T = pd.Timestamp(when)

    def ts(s):
        return pd.to_datetime(s, format="ISO8601")

    out = {k: v.copy() for k, v in raw.items()}
    inc = out["incidents"]
    inc = inc[ts(inc["reported_at"]) <= T].copy()
    later = (ts(inc["closed_at"]) > T).to_numpy()
    inc["closed_at"] = inc["closed_at"].astype(object)
    inc.loc[later, "closed_at"] = None
    inc.loc[later, "status"] = "open"
    inc.loc[~inc["related_incident_id"].isin(inc["incident_id"]), "related_incident_id"] = None
    out["incidents"] = inc
    ids = set(inc["incident_id"])
    ip = out["incident_parties"]
    added = ts(ip["added_at"])
    out["incident_parties"] = ip[ip["incident_id"].isin(ids) & (added.isna() | (added <= T))]
    med = out["mediations"]
    med = med[med["incident_id"].isin(ids) & (ts(med["held_at"]) <= T)].copy()
    pending = (ts(med["outcome_at"]) > T).to_numpy()
    med["outcome_at"] = med["outcome_at"].astype(object)
    med.loc[pending, "outcome"] = "pending"
    med.loc[pending, "outcome_at"] = None
    out["mediations"] = med
    notes = out["incident_notes"]
    out["incident_notes"] = notes[notes["incident_id"].isin(ids) & (ts(notes["recorded_at"]) <= T)]
    flags = out["person_flags"]
    out["person_flags"] = flags[ts(flags["recorded_at"]) <= T]
    rel = out["relations"]
    out["relations"] = rel[rel["since"].isna() | (ts(rel["since"]) <= T)]
    hm = out["household_members"]
    hm = hm[hm["start_date"].isna() | (ts(hm["start_date"]) <= T)].copy()
    hm["end_date"] = hm["end_date"].astype(object)
    hm.loc[(ts(hm["end_date"]) > T).to_numpy(), "end_date"] = None
    out["household_members"] = hm
    # Attributes: the latest row by T; rows but none by T: unknown; no rows: the persons value.
    attrs = out["person_attributes"]
    value: dict[tuple[str, str], str] = {}
    for row in attrs.itertuples(index=False):
        value.setdefault((row.person_id, row.attribute), "unknown")
    for row in attrs.iloc[np.argsort(ts(attrs["recorded_at"]).to_numpy(), kind="stable")].itertuples(index=False):
        if ts(pd.Series([row.recorded_at])).iloc[0] <= T:
            value[(row.person_id, row.attribute)] = row.value
    persons = out["persons"].copy()
    for attr in ("hukou", "employment"):
        persons[attr] = [value.get((pid, attr), v) for pid, v in zip(persons["person_id"], persons[attr])]
    # A person record recorded after T is a row without identifiers (it cannot link yet).
    if "recorded_at" in persons:
        late = (ts(persons["recorded_at"]) > T).to_numpy()
        for col in ("name", "id_number", "phone"):
            persons[col] = persons[col].astype(object)
            persons.loc[late, col] = None
    out["persons"] = persons
    out["person_attributes"] = attrs[ts(attrs["recorded_at"]) <= T]
    return {k: v.reset_index(drop=True) for k, v in out.items()}


@pytest.fixture(scope="module")
def late_district():
    raw, _ = generate_tables(2500, seed=5)
    ds = Dataset.from_frames(pseudonym_key=KEY, **raw)
    ip, med = ds.incident_parties, ds.mediations
    # Every kind of late fact is there to be leaked.
    assert ip["added_at"].notna().sum() > 20 and med["outcome_at"].notna().sum() > 200
    assert len(ds.incident_notes) > 500 and ds.person_attributes["attribute"].nunique() == 2
    return raw, ds


def _points(ds: Dataset, T) -> pd.DataFrame:
    inc = ds.incidents
    d = inc[(inc["kind"] == "dispute") & (inc["reported_at"] <= T)].sort_values("incident_id")
    late = set(ds.incident_parties.loc[ds.incident_parties["added_at"].notna(), "incident_id"]) | \
        set(ds.incident_notes["incident_id"]) | set(ds.mediations.loc[ds.mediations["outcome_at"].notna(),
                                                                         "incident_id"])
    ids = pd.unique(np.r_[d["incident_id"].tail(300).to_numpy(dtype=object),
                          d.loc[d["incident_id"].isin(late), "incident_id"].tail(200).to_numpy(dtype=object)])
    return pd.DataFrame({"dispute_id": ids, "as_of": T})


@settings(max_examples=10, deadline=None)
@given(day=st.integers(min_value=150, max_value=1450), seconds=st.integers(min_value=0, max_value=86399))
def test_point_in_time_property_against_the_contracts_cut(late_district, day, seconds):
    """Features at T on the full export equal features on the export as it stood at T."""
    raw, ds = late_district
    T = pd.Timestamp("2021-07-01") + pd.Timedelta(days=day, seconds=seconds)
    pts = _points(ds, T)
    if pts.empty:
        return
    then = Dataset.from_frames(pseudonym_key=KEY, **expected_cut(raw, T))
    pd.testing.assert_frame_equal(build_features(ds, pts), build_features(then, pts))
    # The library's own cut is the same export.
    mine = ds.cut(T)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(mine, name).reset_index(drop=True),
                                      getattr(then, name).reset_index(drop=True), check_dtype=False, obj=name)


# ----------------------------------------------------------------------------- 1.0 compatibility

def test_1_0_files_load_and_give_the_features_they_gave(tmp_path):
    """The golden file holds features computed by the 1.0 code (before contract 1.1) on the
    tiny district and on a generated 1.0 export; the party-history family is left out of it
    because another change reworks it on purpose."""
    golden = pd.read_parquet(GOLDEN)
    cols = [c for c in golden.columns if c not in ("district", "dispute_id", "as_of")]
    raw, _ = generate_tables(800, seed=3, late_facts=False)
    assert all(c not in raw[name].columns for name, cs in CONTRACT_1_1.items() if name in raw for c in cs)
    assert "person_attributes" not in raw and "incident_notes" not in raw
    for district, tables in (("tiny", tiny_tables()), ("generated_800_seed3", raw)):
        folder = tmp_path / district
        folder.mkdir()
        for name, df in tables.items():
            df.to_csv(folder / f"{name}.csv", index=False)
        ds = load_dataset(folder, pseudonym_key=KEY)
        g = golden[golden["district"] == district].reset_index(drop=True)
        X = build_features(ds, g[["dispute_id", "as_of"]])
        for c in cols:
            got = X[c].astype(object) if isinstance(X[c].dtype, pd.CategoricalDtype) else X[c]
            pd.testing.assert_series_equal(got.reset_index(drop=True), g[c], check_dtype=False, obj=c)


def test_empty_1_1_facts_change_nothing():
    raw, _ = generate_tables(800, seed=3, late_facts=False)
    a = Dataset.from_frames(pseudonym_key=KEY, **raw)
    with_empty = dict(raw, incident_parties=raw["incident_parties"].assign(added_at=None),
                      mediations=raw["mediations"].assign(outcome_at=None),
                      person_attributes=pd.DataFrame(columns=TABLES["person_attributes"].column_names),
                      incident_notes=pd.DataFrame(columns=TABLES["incident_notes"].column_names))
    b = Dataset.from_frames(pseudonym_key=KEY, **with_empty)
    d = a.incidents[a.incidents["kind"] == "dispute"]
    pts = pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": d["reported_at"] + pd.Timedelta(days=9)})
    pd.testing.assert_frame_equal(build_features(a, pts), build_features(b, pts))
    assert a.fingerprint() == b.fingerprint()


def test_synth_keeps_the_1_0_tables_of_a_seed():
    full, _ = generate_tables(600, seed=4)
    old, _ = generate_tables(600, seed=4, late_facts=False)
    for name, df in old.items():
        pd.testing.assert_frame_equal(full[name][df.columns].iloc[:len(df)].reset_index(drop=True), df, obj=name)


# ----------------------------------------------------------------------------- online

def test_online_parties_outcomes_and_notes_give_the_batch_features(late_district):
    """Disputes whose late parties, delayed outcomes and notes reach the scorer only with the
    request get the features the batch computes with all of them in the history."""
    _, ds = late_district
    inc = ds.incidents
    late = set(ds.incident_notes["incident_id"]) | set(ds.mediations.loc[ds.mediations["outcome_at"].notna(),
                                                                         "incident_id"])
    d = inc[(inc["kind"] == "dispute") & inc["incident_id"].isin(late)].sample(60, random_state=3)
    as_of = (d["reported_at"] + pd.Timedelta(days=25)).to_numpy()
    batch = build_features(ds, pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": as_of}))
    ids = d["incident_id"]
    t = ds.tables()
    meds, notes = t["mediations"], t["incident_notes"]
    history = Dataset.from_frames(pseudonymised=True, **dict(
        t, mediations=meds[~meds["incident_id"].isin(ids)], incident_notes=notes[~notes["incident_id"].isin(ids)]))
    idx = history_index(history)
    P = points_from_records(
        idx, d.reset_index(drop=True), ds.incident_parties[ds.incident_parties["incident_id"].isin(ids)], as_of,
        meds[meds["incident_id"].isin(ids)], notes[notes["incident_id"].isin(ids)])
    online = compute_features(idx, P)
    # Every column, the parties' failed-mediation history included: the dispute's own
    # sessions are never part of it, whether the history holds them (batch) or not (online).
    failed = [c for c in batch.columns if c.startswith("hist_failed_mediation")]
    assert failed and batch[failed].to_numpy().sum() > 0, "no failed mediation in the parties' histories"
    assert online["notes"].sum() > 0 and online["mediations"].sum() > 0
    assert (online["am_days_since_failed"].notna()).sum() > 0, "no failed session on the disputes: untested"
    pd.testing.assert_frame_equal(batch, online)

    # The text model reads the description and the notes given online as the batch reads
    # them from the history (fitted here on the batch's texts, labelled by danger words).
    full = history_index(ds)
    pts = pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": as_of})
    texts = point_texts(full, points_from_history(full, pts))
    assert sum("\n" in x for x in texts) > 0, "no note in the texts: the notes went untested"
    tm = TextModel.fit(texts * 3, np.tile((batch["notes_danger"] > 0).to_numpy(int), 3))
    assert np.abs(tm.coef).sum() > 0
    b, o = build_features(ds, pts, text=tm)["text_model_score"], compute_features(idx, P, tm)["text_model_score"]
    assert b.notna().all() and b.std() > 0
    np.testing.assert_allclose(b.to_numpy(), o.to_numpy(), rtol=0, atol=1e-12)


def test_score_dispute_takes_notes(small_model, late_ds):
    from escalation_risk import DataValidationError, Scorer
    from escalation_risk.dataset import validate_rows
    d = {"incident_id": "q1", "kind": "dispute", "category": "neighbor", "occurred_at": "2024-04-01",
         "reported_at": "2024-04-02", "source": "grid_worker", "description": "楼上漏水"}
    parties = [{"incident_id": "q1", "party_id": "p1", "party_type": "person", "role": "respondent"},
               {"incident_id": "q1", "party_id": "p4", "party_type": "person", "role": "complainant",
                "added_at": "2024-04-20"}]
    notes = [{"incident_id": "q1", "note_id": "q1n1", "recorded_at": "2024-04-10",
              "text": "回访：当事人扬言要拿刀砍人"}]
    idx = history_index(late_ds)
    rows = (validate_rows("incidents", [d]), validate_rows("incident_parties", parties))
    inc2 = pd.concat([rows[0], rows[0].assign(incident_id="q2")], ignore_index=True)
    parties2 = pd.concat([rows[1], rows[1].assign(incident_id="q2")], ignore_index=True)
    notes2 = validate_rows("incident_notes", notes + [dict(notes[0], incident_id="q2", note_id="q2n1")])
    X = compute_features(idx, points_from_records(idx, inc2, parties2,
                                                  pd.to_datetime(["2024-04-09", "2024-04-21"]).to_numpy(),
                                                  None, notes2))
    assert X["notes"].tolist() == [0, 1] and X["latest_note_danger"].tolist() == [0, 1]
    assert X["text_weapon"].tolist() == [0, 1] and X["n_person_parties"].tolist() == [1, 2]

    scorer = Scorer(small_model, late_ds)
    given = [{k: v for k, v in r.items() if k != "incident_id"} for r in parties]
    note = {k: v for k, v in notes[0].items() if k != "incident_id"}
    a = scorer.score_dispute(d, given, notes=[note], as_of="2024-04-21")
    assert 0 <= a.probability <= 1 and a.dispute_id == "q1"
    with pytest.raises(DataValidationError, match="must not be before its incident's reported_at"):
        scorer.score_dispute(d, given, notes=[dict(note, recorded_at="2024-03-01")], as_of="2024-04-21")
    with pytest.raises(DataValidationError, match="added_at"):
        scorer.score_dispute(d, [dict(given[1], added_at="2024-03-01")], as_of="2024-04-21")


def test_model_card_and_evaluate_say_which_facts_were_dated(tmp_path, small_district, small_model):
    from click.testing import CliRunner

    from escalation_risk.cli import main
    from escalation_risk.model_card import write_model_card
    facts = small_model.manifest["training_data"]["time_varying_facts"]
    assert facts == time_varying_facts(small_district.tables()) and not any(f.startswith("no ") for f in facts)
    card = write_model_card(small_model, tmp_path / "card").read_text(encoding="utf-8")
    assert "Time-varying facts in the training data" in card and all(f in card for f in facts)
    old = dict(small_model.manifest, training_data={"fingerprint": "0" * 64, "fingerprint_at_cutoff": "0" * 64})
    small_model.manifest, kept = old, small_model.manifest
    try:
        assert "Time-varying facts: not recorded" in write_model_card(small_model, tmp_path / "old").read_text(
            encoding="utf-8")
    finally:
        small_model.manifest = kept
    small_district.write(tmp_path / "data", fmt="csv")
    small_model.save(tmp_path / "model")
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "data"), "--model", str(tmp_path / "model"),
                                  "--start", "2025-01-01"])
    assert r.exit_code == 0, r.output
    assert "time-varying facts in these data" in r.output
    assert small_model.evaluate(small_district).period["time_varying_facts"] == facts
    assert f"incident_notes: {len(small_district.incident_notes)} later notes" in r.output


def test_appended_notes_and_parties_are_checked_against_the_history(late_ds):
    note = pd.DataFrame({"note_id": ["n9"], "incident_id": ["d2"], "recorded_at": ["2024-04-01"], "text": ["x"]})
    with pytest.raises(Exception, match="must not be before its incident's reported_at"):
        late_ds.append(pseudonym_key=KEY, incident_notes=note)
    ok = late_ds.append(pseudonym_key=KEY, incident_notes=note.assign(recorded_at="2024-04-03"))
    assert len(ok.incident_notes) == 4 and _feat(ok, "d2", "2024-04-04")["notes"] == 1
    party = pd.DataFrame({"incident_id": ["d2"], "party_id": ["p5"], "party_type": ["person"], "role": ["other"],
                          "added_at": ["2024-03-30"]})
    q = late_ds.append(pseudonym_key=KEY, errors="quarantine", incident_parties=party)
    assert q.quarantine["reason"].tolist() == ["must not be before its incident's reported_at"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_1_1_files_round_trip(tmp_path, fmt):
    direct = Dataset.from_frames(pseudonym_key=KEY, **late_tables())
    for name, df in late_tables().items():
        if fmt == "csv":
            df.to_csv(tmp_path / f"{name}.csv", index=False)
        else:
            df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    loaded = load_dataset(tmp_path, pseudonym_key=KEY)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(direct, name), obj=name)
    loaded.write(tmp_path / "again", fmt=fmt)
    again = load_dataset(tmp_path / "again", pseudonym_key=KEY)
    assert len(again.incident_notes) == 3 and again.incident_parties["added_at"].notna().sum() == 1
