"""The escalation families (velocity, after a failed mediation, the family circle, the text
model) on the hand-built district with known answers, and fairness as a setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import KEY, late_tables, tiny_tables
from sklearn.metrics import roc_auc_score

import escalation_risk as er
from escalation_risk import Dataset
from escalation_risk.artifacts import ModelLoadError
from escalation_risk.features import REGISTRY, SENSITIVE, build_features
from escalation_risk.features.text_model import TextModel, fit_out_of_fold
from escalation_risk.model_card import write_model_card

DAY = 86400.0


def _feat(ds, dispute_id, as_of: str) -> pd.Series:
    # At midnight: a bare date names the end of its day (clock.to_moment), the answers below count whole days.
    when = as_of if "T" in as_of else as_of + "T00:00"
    return build_features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [when]})).iloc[0]


def _days(a: str, b: str) -> float:
    return (pd.Timestamp(b) - pd.Timestamp(a)).total_seconds() / DAY


def test_velocity_known_answers(tiny_ds):
    # d2 (p1 and the neighbour p4): p1 (= p3) had d1 on 03-02 and the police call c1 on 03-10 21:30.
    x = _feat(tiny_ds, "d2", "2024-04-25")
    assert x["vel_last_gap_min"] == pytest.approx(_days("2024-03-02", "2024-03-10T21:30"))
    assert np.isnan(x["vel_gap_shrink_min"])  # two records give one gap: nothing to compare it with
    assert x["vel_7d_max"] == 0 and x["vel_burst_7d_max"] == 1.0
    # p1's two records are 45 and 54 days back (a month quieter than usual: 0.6), but the
    # neighbour with no record reads 1 and the maximum over parties keeps it. The month against
    # the 90 days before is the history's trend (velocity once repeated it: one rule, one place).
    assert "vel_burst_30d_max" not in x and x["hist_trend_max"] == 1.0
    ages = [_days("2024-03-02", "2024-04-25"), _days("2024-03-10T21:30", "2024-04-25")]
    assert x["vel_intensity_30d_max"] == pytest.approx(sum(0.5 ** (a / 30) for a in ages))
    assert np.isnan(x["vel_pair_last_gap_min"]) and x["vel_pair_intensity_30d_max"] == 0  # d2 is their first
    # d1 (the spouses): its own record never counts; p1's d2 (04-02) after c1 (03-10) is the shortest
    # last gap; the pair shares c1 and the criminal case k1 (04-21).
    y = _feat(tiny_ds, "d1", "2024-04-25")
    assert y["vel_last_gap_min"] == pytest.approx(_days("2024-03-10T21:30", "2024-04-02"))
    assert y["vel_pair_last_gap_min"] == pytest.approx(_days("2024-03-10T21:30", "2024-04-21"))
    # p1's last 30 days hold d2 (04-02), the 90 before them c1 (03-10): two against 1 + 1/3.
    assert y["hist_trend_max"] == pytest.approx(2 / (1 * 30 / 90 + 1))
    # A burst: d2 reported the day before scores p1's week at two records against none before.
    z = _feat(tiny_ds, "d1", "2024-04-03")
    assert z["vel_7d_max"] == 1 and z["vel_burst_7d_max"] == pytest.approx(2 / (1 * 7 / 90 + 1))
    assert z["hist_trend_max"] == pytest.approx(3.0)  # c1 and d2 both in the last 30 days, none before


def test_after_a_failed_mediation_known_answers(tiny_ds):
    # m1 failed on 03-05; the police call c1 five days later threatens with a kitchen knife.
    x = _feat(tiny_ds, "d1", "2024-03-12")
    assert x["am_days_since_failed"] == 7
    assert x["am_repeat_7d"] == 1 and x["am_threat_after_failed"] == 1 and x["am_weapon_after_failed"] == 1
    assert x["am_danger_after_failed"] == 1
    # After m2 (03-20) nothing came within a week; k1 (04-21, 持刀) still mentions a weapon after it.
    y = _feat(tiny_ds, "d1", "2024-04-25")
    assert y["am_days_since_failed"] == 36 and y["am_repeat_7d"] == 0
    assert y["am_weapon_after_failed"] == 1 and y["am_threat_after_failed"] == 0
    # Before any session, and on a dispute without one: nothing to follow.
    for z in (_feat(tiny_ds, "d1", "2024-03-04"), _feat(tiny_ds, "d2", "2024-04-25")):
        assert np.isnan(z["am_days_since_failed"]) and z["am_danger_after_failed"] == 0 and z["am_repeat_7d"] == 0


def test_after_a_failed_mediation_reads_the_outcome_when_it_was_recorded():
    ds = Dataset.from_frames(pseudonym_key=KEY, **late_tables())
    # m2 (held 03-20) was typed in as failed only on 04-10: before that the last known failure is m1.
    assert _feat(ds, "d1", "2024-04-05")["am_days_since_failed"] == 31
    assert _feat(ds, "d1", "2024-04-11")["am_days_since_failed"] == 22
    # The calm note of 03-25 follows the failure but mentions no danger; the note of 04-22 does.
    assert _feat(ds, "d1", "2024-04-21T12:00")["am_danger_after_failed"] == 1  # k1 only
    assert _feat(ds, "d1", "2024-04-23")["am_danger_after_failed"] == 2       # and the note


def _with_offence_by_the_neighbour() -> Dataset:
    t = tiny_tables()
    t["incidents"] = pd.concat([t["incidents"], pd.DataFrame({
        "incident_id": ["x2"], "kind": ["criminal_case"], "category": ["assault"], "occurred_at": ["2024-04-10"],
        "reported_at": ["2024-04-10"], "place_id": ["pl2"], "source": ["police_110"], "status": ["closed"],
        "closed_at": ["2024-04-12"], "amount": [None], "description": ["打架"], "related_incident_id": [None]})],
        ignore_index=True)
    t["incident_parties"] = pd.concat([t["incident_parties"], pd.DataFrame({
        "incident_id": ["x2"], "party_id": ["p4"], "party_type": ["person"], "role": ["suspect"]})],
        ignore_index=True)
    return Dataset.from_frames(pseudonym_key=KEY, **t)


def test_circle_known_answers(tiny_ds):
    # d2: p1's family is his wife p2 (household and a spouse tie); p4's household holds only him.
    x = _feat(tiny_ds, "d2", "2024-04-25")
    assert x["circle_family"] == 1 and x["circle_crime_recent"] == 0 and x["circle_flags_recent"] == 0
    # d1: the spouses are each other's family, but a party is never part of the circle.
    assert _feat(tiny_ds, "d1", "2024-04-25")["circle_family"] == 0
    # p1 met p4 in d2 (04-02); p4 became a suspect on 04-10: one of p1's one counterpart, 100%.
    ds = _with_offence_by_the_neighbour()
    y = _feat(ds, "d1", "2024-04-25")
    assert y["circle_counterparts_offended"] == 1 and y["circle_counterparts_offended_share"] == 100
    before = _feat(ds, "d1", "2024-04-05")
    assert before["circle_counterparts_offended"] == 0 and before["circle_counterparts_offended_share"] == 0
    # Scoring d2 itself, p4 is a co-party: not a counterpart of p1 there.
    assert _feat(ds, "d2", "2024-04-25")["circle_counterparts_offended"] == 0


def test_circle_violence_decays_with_time():
    # p1's brother-in-law... here: p4 moves into p1's household and has an assault on record.
    t = tiny_tables()
    t["household_members"] = pd.concat([t["household_members"], pd.DataFrame({
        "household_id": ["h1"], "person_id": ["p5"], "role": ["other"], "start_date": ["2024-01-01"],
        "end_date": [None]})], ignore_index=True)
    t["incident_parties"] = pd.concat([t["incident_parties"], pd.DataFrame({
        "incident_id": ["x1"], "party_id": ["p5"], "party_type": ["person"], "role": ["suspect"]})],
        ignore_index=True)
    ds = Dataset.from_frames(pseudonym_key=KEY, **t)
    x = _feat(ds, "d2", "2024-04-25")  # p5 (in h1 since 2024) is a suspect in the 2023-01-02 assault x1
    age = _days("2023-01-02", "2024-04-25") / 365
    assert x["circle_family"] == 2
    assert x["circle_crime_recent"] == pytest.approx(0.5 ** age)
    assert x["circle_violence_recent"] == pytest.approx(0.5 ** age)  # assault is violent
    assert _feat(ds, "d2", "2025-04-25")["circle_crime_recent"] == pytest.approx(0.5 ** (age + 1), rel=1e-3)


def test_text_model_never_scores_what_it_was_fitted_on():
    """Texts that only identify their row: fitted in sample they rank their labels perfectly,
    out of fold not at all. Every moment of one dispute is in one fold."""
    rng = np.random.default_rng(0)
    n = 400
    groups = np.repeat(np.arange(n // 2), 2)
    texts = [f"事件{g:04d}号 案卷{g * 7919 % 10007:05d}" for g in groups]
    y = np.repeat(rng.integers(0, 2, n // 2), 2)
    inside = TextModel.fit(texts, y).score(texts)
    assert roc_auc_score(y, inside) > 0.85  # memorised (MIN_DF keeps only n-grams of 5 texts or more)
    oof = fit_out_of_fold(texts, y, groups, folds=5, seed=0)
    assert abs(roc_auc_score(y, oof) - 0.5) < 0.1
    # A word that carries the label is learnt out of fold too.
    signal = [t + (" 扬言报复" if lab else " 情绪平稳") for t, lab in zip(texts, y)]
    assert roc_auc_score(y, fit_out_of_fold(signal, y, groups, folds=5, seed=0)) > 0.95


def test_text_model_round_trip_keeps_no_text():
    texts = ["丈夫酒后扬言报复", "邻里漏水争执", "工资拖欠三个月", "持刀威胁"] * 10
    tm = TextModel.fit(texts, np.array([1, 0, 0, 1] * 10))
    d = tm.to_dict()
    assert all(isinstance(v, (int, float, str, list)) for v in d.values())
    assert not any("报复" in str(v) for v in d.values())  # numbers for hashed columns only
    np.testing.assert_array_equal(TextModel.from_dict(d).score(texts), tm.score(texts))


def test_exclude_knows_what_each_attribute_shapes():
    assert set(SENSITIVE) == {"gender", "hukou", "age"}
    assert REGISTRY.excluded(["gender"]) == ["n_male", "n_female"]
    assert REGISTRY.excluded(["age", "hukou"]) == ["age_max", "age_min", "n_migrant"]
    assert set(REGISTRY.excluded(["velocity"])) == {f.name for f in REGISTRY if f.family == "velocity"}
    with pytest.raises(ValueError, match="religion"):
        REGISTRY.excluded(["religion"])


def test_train_without_the_attributes(small_district, tmp_path):
    m = er.train(small_district, cutoff="2025-01-01", seed=0, exclude=["gender", "hukou", "age"],
                 config={"param_grid": [], "families_off": []})
    gone = {"n_male", "n_female", "n_migrant", "age_max", "age_min"}
    assert not gone & set(m.feature_names) and "text_model_score" in m.feature_names
    assert m.manifest["features"]["excluded"]["requested"] == ["gender", "hukou", "age"]
    assert set(m.manifest["features"]["excluded"]["features"]) >= gone
    m.save(tmp_path / "m")
    back = er.load_model(tmp_path / "m")
    assert back.feature_names == m.feature_names and back.text_model is not None
    s1 = m.score(small_district, "2025-03-01")
    s2 = back.score(small_district, "2025-03-01")
    np.testing.assert_array_equal(s1["probability"].to_numpy(), s2["probability"].to_numpy())
    card = write_model_card(back, tmp_path / "m").read_text(encoding="utf-8")
    assert "Excluded on request: **gender, hukou, age**" in card and "`n_migrant`" in card
    # The text model is hashed with the rest: an edited one is refused.
    tm = tmp_path / "m" / "text_model.json"
    tm.write_text(tm.read_text(encoding="utf-8").replace('"intercept":', '"intercept":1+'), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="text_model.json"):
        er.load_model(tmp_path / "m")


def test_families_behind_the_setting_are_off_by_default_and_online_agrees_when_on(small_district):
    """The families that did not earn their place are off unless asked for; switched on,
    a dispute the history never saw gets the batch's probability and reasons."""
    from escalation_risk.model.training import DEFAULT_CONFIG, FAMILIES_OFF
    assert list(DEFAULT_CONFIG["families_off"]) == list(FAMILIES_OFF)
    on = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": [], "families_off": []})
    new = {f.name for f in REGISTRY if f.family in ("velocity", "after_mediation", "circle", "text_model")}
    assert new <= set(on.feature_names)
    default = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": []})
    assert not {f.name for f in REGISTRY if f.family in FAMILIES_OFF} & set(default.feature_names)
    assert default.manifest["features"]["excluded"]["families_off"] == list(FAMILIES_OFF)
    assert_online_equals_batch(on, small_district, n=16)


def assert_online_equals_batch(model, ds, n: int) -> None:
    """Disputes the Scorer's history never saw, scored online one at a time, get the
    batch's probability and reasons (``model.score`` on the history with the dispute)."""
    from test_scoring import NIGHT, _with, _withheld_request, _withheld_set, _without
    withheld = _withheld_set(ds, n=n, seed=5)
    scorer = er.Scorer(model, _without(ds, withheld))
    rng = np.random.default_rng(2)
    for d in withheld:
        row, parties, meds, notes, own = _withheld_request(ds, d)
        as_of = min(row["reported_at"] + pd.Timedelta(days=int(rng.integers(0, 60))), NIGHT)
        ref = _with(scorer.history, own)
        b = model.score(ref, pd.DataFrame({"dispute_id": [d], "as_of": [as_of]}), reasons_for="all").iloc[0]
        a = scorer.score_dispute(row, parties, mediations=meds, notes=notes, as_of=as_of)
        assert abs(a.probability - b["probability"]) < 1e-9, d
        assert [r["en"] for r in a.reasons] == b["reasons"], d


def test_train_variants_gives_what_train_gives(small_district):
    """The ablation's shared build: each variant is the model ``train(exclude=...)`` returns."""
    from escalation_risk.model.training import train_variants
    cfg = {"param_grid": [], "families_off": []}
    got = train_variants(small_district, {"all": [], "no velocity": ["velocity"]}, cutoff="2025-01-01", seed=0,
                         config=cfg)
    alone = er.train(small_district, cutoff="2025-01-01", seed=0, config=cfg, exclude=["velocity"])
    v = got["no velocity"]
    assert v.booster.model_to_string() == alone.booster.model_to_string()
    assert v.calibrator == alone.calibrator and v.thresholds == alone.thresholds
    assert not {f.name for f in REGISTRY if f.family == "velocity"} & set(v.feature_names)
    assert "vel_burst_7d_max" in got["all"].feature_names
    from escalation_risk.model import report_points
    X = build_features(small_district, report_points(small_district, "2025-01-01", "2025-03-01").head(50),
                       text=v.text_model)
    np.testing.assert_array_equal(v.predict_proba(X), alone.predict_proba(X))
