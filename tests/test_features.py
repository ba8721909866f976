"""Point-in-time features: known answers on a hand-built district, the point-in-time
property on a generated one, and batch/online agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import KEY, tiny_tables
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation_risk import Dataset
from escalation_risk.features import (
    CATEGORICAL,
    FEATURE_NAMES,
    REGISTRY,
    build_features,
    compute_features,
    history_index,
    load_lexicon,
    points_from_history,
    points_from_records,
)
from escalation_risk.synth import generate_district


def _feat(ds, dispute_id, as_of) -> pd.Series:
    """Features at midnight starting ``as_of``'s day (a date alone would be the end of that day)."""
    return build_features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [pd.Timestamp(as_of)]})).iloc[0]


def test_dispute_family_known_answers(tiny_ds):
    x = _feat(tiny_ds, "d1", "2024-04-25")
    assert x["days_open"] == 54
    assert x["followups"] == 2 and x["followup_police_calls"] == 1 and x["followups_30d"] == 1
    assert x["mediations"] == 2 and x["mediations_failed"] == 2 and x["last_mediation_failed"] == 1
    assert x["days_since_mediation"] == 36
    assert x["text_threat"] == 1 and x["text_revenge"] == 1 and x["text_drinking"] == 1
    assert x["followup_text_weapon"] == 2  # 菜刀 in the police call, 持刀 in the criminal case
    early = _feat(tiny_ds, "d1", "2024-03-02")
    assert early["followups"] == 0 and early["mediations"] == 0 and np.isnan(early["days_since_mediation"])


def test_party_history_counts_canonical_person(tiny_ds):
    # p3 is p1 recorded by the police: his 2023 assault counts in p1's history.
    x = _feat(tiny_ds, "d1", "2024-03-02")
    assert x["hist_crime_suspect_all_max"] == 1 and x["hist_violent_suspect_all_max"] == 1
    assert x["hist_days_since_last"] == 425
    assert x["hist_days_since_offence"] == 425 and x["hist_crime_suspect_90d_max"] == 0
    assert x["flag_prior_violence"] == 1      # recorded on p3 in 2023
    assert x["flag_substance"] == 0           # recorded on p1 only on 2024-03-15
    assert x["hist_dispute_all_max"] == 0     # the scored dispute is not its own history
    later = _feat(tiny_ds, "d1", "2024-04-25")
    assert later["flag_substance"] == 1
    assert later["hist_days_since_offence"] == 4 and later["hist_crime_suspect_90d_max"] == 1  # k1, 2024-04-21
    assert later["hist_police_call_90d_sum"] == 2   # c1: p3 (= p1) and p2
    assert later["hist_dispute_30d_max"] == 1       # d2 on 2024-04-02
    assert later["hist_trend_max"] == pytest.approx(2 / (1 / 3 + 1))


def test_pair_people_household_place(tiny_ds):
    x = _feat(tiny_ds, "d1", "2024-04-25")
    assert x["pair_prior_conflicts"] == 2 and x["pair_relation"] == "spouse" and x["pair_intimate"] == 1
    assert x["pair_cohabit"] == 1
    assert x["age_max"] == 44 and x["age_min"] == 42 and x["n_female"] == 1
    assert x["place_incidents_90d"] == 2 and x["place_violent_90d"] == 1
    y = _feat(tiny_ds, "d2", "2024-04-25")
    assert y["pair_relation"] == "neighbor" and y["pair_cohabit"] == 0
    assert y["hh_coresidents"] == 1 and y["hh_domestic_disputes"] == 1 and y["hh_rented"] == 1
    assert y["grid_incidents_90d"] == 3
    # After p2's membership ended on 2024-06-01 the spouses no longer live together.
    t = tiny_tables()
    ds = Dataset.from_frames(pseudonym_key=KEY, **t)
    assert _feat(ds, "d1", "2024-06-02")["pair_cohabit"] == 0


def test_network_and_organisation():
    t = tiny_tables()
    # A second wage dispute against the same employer, and a criminal neighbour of p1.
    t["incidents"] = pd.concat([t["incidents"], pd.DataFrame({
        "incident_id": ["d4"], "kind": ["dispute"], "category": ["labor_wage"], "occurred_at": ["2024-04-10"],
        "reported_at": ["2024-04-10"], "place_id": ["pl3"], "source": ["walk_in"], "status": ["open"],
        "closed_at": [None], "amount": [9000.0], "description": ["集体讨薪"], "related_incident_id": [None]})])
    t["incident_parties"] = pd.concat([t["incident_parties"], pd.DataFrame({
        "incident_id": ["d4", "d4", "x1"], "party_id": ["p2", "o1", "p4"],
        "party_type": ["person", "organization", "person"], "role": ["complainant", "respondent", "suspect"]})])
    ds = Dataset.from_frames(pseudonym_key=KEY, **t)
    x = _feat(ds, "d3", "2024-04-25")
    assert x["org_open_disputes_30d"] == 1 and x["org_disputes_365d"] == 1
    y = _feat(ds, "d1", "2024-03-02")
    assert y["net_size"] == 1 and y["net_criminal"] == 1 and y["net_violent"] == 1   # p4, neighbour of p1


def test_text_signals_chinese_and_english():
    lex = load_lexicon()
    m = lex.matrix(pd.Series(["他扬言要报复，还拿着菜刀", "He was drunk and threatened to kill her",
                              "Repeatedly petitioned the county", "楼上漏水", None]))
    col = {s: j for j, s in enumerate(lex.signals)}
    assert m[0, col["threat"]] and m[0, col["revenge"]] and m[0, col["weapon"]]
    assert m[1, col["drinking"]] and m[1, col["threat"]]
    assert m[2, col["repeated_petition"]]
    assert not m[3].any() and not m[4].any()


def test_columns_order_and_dtypes_are_stable(tiny_ds):
    pts = pd.DataFrame({"dispute_id": ["d2", "d1"], "as_of": ["2024-04-25", "2024-04-25"]})
    X = build_features(tiny_ds, pts)
    assert list(X.columns) == ["dispute_id", "as_of"] + FEATURE_NAMES
    assert list(X["dispute_id"]) == ["d2", "d1"]
    for name in FEATURE_NAMES:
        if name in CATEGORICAL:
            assert list(X[name].cat.categories) == list(REGISTRY[name].categories)
        else:
            assert X[name].dtype == "float64", name
    assert all(REGISTRY[n].en and REGISTRY[n].zh for n in FEATURE_NAMES)


def test_bad_points_are_refused(tiny_ds):
    with pytest.raises(ValueError, match="not in the data"):
        build_features(tiny_ds, pd.DataFrame({"dispute_id": ["nope"], "as_of": ["2024-05-01"]}))
    with pytest.raises(ValueError, match="not disputes"):
        build_features(tiny_ds, pd.DataFrame({"dispute_id": ["c1"], "as_of": ["2024-05-01"]}))
    with pytest.raises(ValueError, match="before the dispute was reported"):
        build_features(tiny_ds, pd.DataFrame({"dispute_id": ["d1"], "as_of": ["2024-01-01"]}))


# ----------------------------------------------------------------------------- point in time

@pytest.fixture(scope="module")
def district():
    return generate_district(2500, seed=5, pseudonym_key=KEY)


def _open_points(ds, T, limit=400):
    inc = ds.incidents
    d = inc[(inc["kind"] == "dispute") & (inc["reported_at"] <= T)]
    d = d.sort_values("incident_id").tail(limit)
    return pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": T})


@settings(max_examples=12, deadline=None)
@given(day=st.integers(min_value=200, max_value=1400), seconds=st.integers(min_value=0, max_value=86399))
def test_point_in_time_property(district, day, seconds):
    """Features at T are identical whether or not the data holds anything recorded after T."""
    T = pd.Timestamp("2021-07-01") + pd.Timedelta(days=day, seconds=seconds)
    pts = _open_points(district, T)
    assert len(pts) > 0  # day >= 200: the district has disputes by then, so the property is exercised
    full = build_features(district, pts)
    cut = build_features(district.cut(T), pts)
    pd.testing.assert_frame_equal(full, cut)


def test_points_at_report_time_ignore_the_future(district):
    inc = district.incidents
    d = inc[inc["kind"] == "dispute"].sample(200, random_state=1)
    pts = pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": d["reported_at"].to_numpy()})
    full = build_features(district, pts)
    for i in range(0, 200, 40):  # each point against the data as it stood at its own moment
        T = pts["as_of"].iloc[i]
        one = build_features(district.cut(T), pts.iloc[[i]])
        pd.testing.assert_frame_equal(full.iloc[[i]].reset_index(drop=True), one)


def test_online_records_give_the_batch_features(district):
    """The same dispute given as plain rows gets exactly the features the batch computes."""
    idx = history_index(district)
    inc = district.incidents
    d = inc[inc["kind"] == "dispute"].sample(50, random_state=2)
    as_of = d["reported_at"] + pd.Timedelta(days=20)
    batch = build_features(district, pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(),
                                                   "as_of": as_of.to_numpy()}))
    parties = district.incident_parties[district.incident_parties["incident_id"].isin(d["incident_id"])]
    online = compute_features(idx, points_from_records(idx, d.reset_index(drop=True), parties, as_of.to_numpy()))
    pd.testing.assert_frame_equal(batch, online)


def test_lexicon_engines_agree_on_a_district(district):
    """Arrow's vectorised RE2 (the batch) and RE2's compiled patterns (a single dispute)
    give the same matrix on every text of a district, edge cases included."""
    lex = load_lexicon()
    texts = pd.concat([district.incidents["description"],
                       pd.Series(["", None, "WARNED him to pay", "kill him", "KILL HIM!", "菜刀", "酒后",
                                  "skill him"])],
                      ignore_index=True)
    arrow = lex.matrix(texts, engine="arrow")
    one_by_one = lex.matrix(texts, engine="re2")
    assert arrow.any() and (arrow == one_by_one).all()


# ----------------------------------------------------------------------------- the lexicon

def _custom_lexicon(tmp_path):
    """The shipped lexicon without ``drinking``, with a new ``domestic_chore`` signal and
    patterns that use escaped parentheses and a bracket class."""
    import json
    from importlib import resources

    raw = json.loads(resources.files("escalation_risk").joinpath("lexicon/signals.json").read_text("utf-8"))
    del raw["drinking"], raw["_labels"]["drinking"]
    raw["domestic_chore"] = ["家务", r"\(chores\)", "[(（]家事[)）]"]
    raw["_labels"]["domestic_chore"] = ["a quarrel over chores", "因家务起争执"]
    path = tmp_path / "lexicon.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return load_lexicon(str(path))


def test_lexicon_patterns_keep_escapes_and_bracket_classes(tmp_path):
    lex = _custom_lexicon(tmp_path)
    m = lex.matrix(pd.Series(["argued (chores) again", "argued chores again", "因（家事）争吵", "家事"]))
    j = lex.signals.index("domestic_chore")
    assert m[:, j].tolist() == [1, 0, 1, 0]
    # Groups still match as written (要(你|他|她)(的)?命 in the shipped lexicon).
    assert load_lexicon().matrix(pd.Series(["要他的命"]))[0, load_lexicon().signals.index("threat")] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"threat": ["(?<=x)y"]}', encoding="utf-8")
    with pytest.raises(ValueError, match="threat"):
        load_lexicon(str(bad))


def test_custom_lexicon_signal_becomes_a_feature(tiny_ds, tmp_path):
    from escalation_risk.features import feature_names

    lex = _custom_lexicon(tmp_path)
    pts = pd.DataFrame({"dispute_id": ["d1", "d2"], "as_of": ["2024-04-25", "2024-04-25"]})
    X = build_features(tiny_ds, pts, lexicon=lex)
    assert list(X.columns) == ["dispute_id", "as_of"] + feature_names(lex)
    assert "text_domestic_chore" in X and "followup_text_domestic_chore" in X
    assert "text_drinking" not in X and "followup_text_drinking" not in X
    assert X["text_domestic_chore"].tolist() == [1.0, 0.0]          # d1: 夫妻因家务争吵
    assert REGISTRY["text_domestic_chore"].en == "a quarrel over chores"
    # The shipped lexicon again gives the shipped columns: the cached index follows the lexicon.
    assert list(build_features(tiny_ds, pts).columns) == ["dispute_id", "as_of"] + FEATURE_NAMES


def test_features_a_slice_at_a_time_equal_features_at_once(district):
    """A batch computed a slice of points at a time (what bounds a night's memory) gives the
    very frame computed at once: points of the history, and online points whose own notes
    and mediations must follow their point into its slice."""
    idx = history_index(district)
    inc = district.incidents
    d = inc[inc["kind"] == "dispute"].sample(120, random_state=3).reset_index(drop=True)
    as_of = (d["reported_at"] + pd.Timedelta(days=30)).to_numpy()
    batch = points_from_history(idx, pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": as_of}))
    whole = compute_features(idx, batch, chunk=10**9)
    assert whole["n_person_parties"].nunique() > 1
    for chunk in (7, 64):
        pd.testing.assert_frame_equal(compute_features(idx, batch, chunk=chunk), whole)

    parties = district.incident_parties[district.incident_parties["incident_id"].isin(d["incident_id"])]
    # Notes and mediations the history does not hold yet (new ids), on some of the disputes.
    some = d["incident_id"].iloc[::5].to_numpy()
    rep = d.set_index("incident_id")["reported_at"]
    notes = pd.DataFrame({"note_id": [f"N-new-{i}" for i in range(len(some))], "incident_id": some,
                          "recorded_at": rep[some].to_numpy() + np.timedelta64(2, "D"),
                          "text": ["他威胁要报复 threatened revenge"] * len(some)})
    meds = pd.DataFrame({"mediation_id": [f"M-new-{i}" for i in range(len(some))], "incident_id": some,
                         "held_at": rep[some].to_numpy() + np.timedelta64(3, "D"),
                         "outcome_at": rep[some].to_numpy() + np.timedelta64(4, "D"),
                         "outcome": ["failed"] * len(some)})
    online = points_from_records(idx, d, parties, as_of, mediations=meds, notes=notes)
    assert len(online.extra_mediations["pt"]) == len(some) and len(online.extra_notes[0]) == len(some)
    plain = compute_features(idx, batch, chunk=10**9)
    whole = compute_features(idx, online, chunk=10**9)
    assert not whole.equals(plain)  # the notes and mediations given online are read
    for chunk in (7, 64):
        pd.testing.assert_frame_equal(compute_features(idx, online, chunk=chunk), whole)


def test_batch_score_a_slice_at_a_time_equals_scoring_at_once(district, monkeypatch):
    """RiskModel.score builds features and reasons a slice of points at a time (the night's
    memory): probabilities, levels, reasons and plans equal those of one pass."""
    from pathlib import Path

    import escalation_risk.model.risk_model as risk_model
    from escalation_risk.model import load_model

    model = load_model(Path(__file__).resolve().parents[1] / "models" / "default")
    night = district.incidents["reported_at"].max()
    whole = model.score(district, night, reasons_for="all")
    alerts = model.score(district, night)
    assert len(whole) > 200 and (alerts["level"] != "blue").any() and (alerts["level"] == "blue").any()
    monkeypatch.setattr(risk_model, "CHUNK", 61)
    pd.testing.assert_frame_equal(model.score(district, night, reasons_for="all"), whole)
    pd.testing.assert_frame_equal(model.score(district, night), alerts)


_SEEDED_RUN = """
import hashlib, sys
import pandas as pd
from escalation_risk import Dataset
from escalation_risk.synth import generate_tables
from escalation_risk.features import build_features
tables, _ = generate_tables(1500, seed=7, linkage_noise=0.25)
ds = Dataset.from_frames(pseudonym_key=sys.argv[1], errors="quarantine", **tables)
inc = ds.incidents
d = inc[inc["kind"] == "dispute"]
pts = pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(), "as_of": d["reported_at"].max()})
X = build_features(ds, pts)
key = ds.cache["person_key"]
print(hashlib.sha256(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes()
                     + pd.util.hash_pandas_object(key).to_numpy().tobytes()).hexdigest(), len(X))
"""


def test_linkage_and_features_do_not_depend_on_the_string_hash_seed():
    """Two processes with different PYTHONHASHSEED (set and dict orders of strings differ)
    link the same people and compute the same features, bit for bit."""
    import os
    import subprocess
    import sys

    out = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", _SEEDED_RUN, KEY], env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        out.append(run.stdout.split())
    assert int(out[0][1]) > 100
    assert out[0] == out[1]
