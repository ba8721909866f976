"""The activity family (how recently anything happened around a dispute, its age against its
category's): known answers on the hand-built district, the category medians against a plain
recomputation, and the point-in-time rule on a generated one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import same_when_cut

from escalation_risk.features import REGISTRY, build_features
from escalation_risk.features.activity import CLOSED_WINDOW_DAYS, MIN_CLOSED
from escalation_risk.features.sentences import render
from escalation_risk.model.points import example_points

DAY = 86400.0
NAMES = ["act_days_since_contact", "act_days_since_dispute_contact", "act_age_vs_category"]


def _feat(ds, dispute_id: str, as_of: str) -> pd.Series:
    return build_features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [as_of]})).iloc[0]


def _days(a: str, b: str) -> float:
    return (pd.Timestamp(b) - pd.Timestamp(a)).total_seconds() / DAY


def test_activity_known_answers(tiny_ds):
    # d2 (p1 and the neighbour p4), reported 04-02, nothing on it since; p1 is the suspect of k1 (04-21).
    x = _feat(tiny_ds, "d2", "2024-04-25T00:00")
    assert x["act_days_since_dispute_contact"] == pytest.approx(_days("2024-04-02", "2024-04-25"))
    assert x["act_days_since_contact"] == pytest.approx(_days("2024-04-21", "2024-04-25"))
    # d1 on 03-08: its report (03-02) and the failed session m1 (03-05); the police call c1
    # about it (03-10) is not known yet, and neither is anything of its parties after 03-02.
    y = _feat(tiny_ds, "d1", "2024-03-08T00:00")
    assert y["act_days_since_dispute_contact"] == pytest.approx(_days("2024-03-05", "2024-03-08"))
    assert y["act_days_since_contact"] == pytest.approx(_days("2024-03-05", "2024-03-08"))
    # Two days later c1 names d1: a follow-up is contact with the dispute and with its parties.
    z = _feat(tiny_ds, "d1", "2024-03-11T00:00")
    assert z["act_days_since_dispute_contact"] == pytest.approx(_days("2024-03-10T21:30", "2024-03-11"))
    # Three closed disputes of any category: far fewer than the medians need.
    assert np.isnan(z["act_age_vs_category"])


def test_activity_known_answers_with_notes_and_a_late_party():
    """The late-facts district: a note is contact with the dispute from when it is recorded;
    a party added late brings no contact of its own by joining."""
    from conftest import KEY, late_tables

    from escalation_risk import Dataset
    ds = Dataset.from_frames(pseudonym_key=KEY, **late_tables())
    # d3 (p5, o1; nothing else on either), reported 04-05; the note n3 is recorded 04-06.
    before = _feat(ds, "d3", "2024-04-05T12:00")
    assert before["act_days_since_dispute_contact"] == pytest.approx(0.5)
    after = _feat(ds, "d3", "2024-04-10T00:00")
    assert after["act_days_since_dispute_contact"] == pytest.approx(_days("2024-04-06", "2024-04-10"))
    assert after["act_days_since_contact"] == pytest.approx(_days("2024-04-06", "2024-04-10"))
    # d1 at 04-22 05:00: p4 joined it at 00:00 (not contact); the latest is k1 (04-21), which
    # names d1 and has p1 and p2 in it.
    x = _feat(ds, "d1", "2024-04-22T05:00")
    assert x["act_days_since_contact"] == pytest.approx(_days("2024-04-21", "2024-04-22T05:00"))


def test_category_medians_as_recomputed(small_district):
    ds = small_district
    pts = example_points(ds, every_days=30, max_rescores=3, until="2025-01-01").sample(300, random_state=0)
    X = build_features(ds, pts.reset_index(drop=True))
    inc = ds.incidents[ds.incidents["kind"] == "dispute"]
    closed = inc.dropna(subset=["closed_at"])
    dur = (closed["closed_at"] - closed["reported_at"]).dt.total_seconds() / DAY
    checked = 0
    for (_, p), got in zip(pts.iterrows(), X["act_age_vs_category"]):
        me = inc.set_index("incident_id").loc[p["dispute_id"]]
        day = pd.Timestamp(p["as_of"]).floor("D")
        m = ((closed["category"] == me["category"]) & (closed["closed_at"] < day)
             & (closed["closed_at"] >= day - pd.Timedelta(days=CLOSED_WINDOW_DAYS)))
        if m.sum() < MIN_CLOSED:
            assert np.isnan(got)
            continue
        age = (pd.Timestamp(p["as_of"]) - me["reported_at"]).total_seconds() / DAY
        assert got == pytest.approx(age / max(float(dur[m].median()), 1.0))
        checked += 1
    assert checked > 100


def test_activity_is_point_in_time(small_district):
    a = same_when_cut(small_district, NAMES)  # the data as known at a moment and the whole export: equal
    assert a["act_age_vs_category"].notna().mean() > 0.5


def test_activity_reads_in_both_languages():
    for name in NAMES:
        assert REGISTRY[name].family == "activity"
        assert "12" in render(name, {name: 12.0}, "en") and "12" in render(name, {name: 12.0}, "zh")


def test_activity_online_equals_batch_for_parties_added_late(small_district):
    """A party added to a dispute after its report: the batch's history holds the dispute
    in that party's timeline (from the arrival), the online history never saw it; either
    way the dispute itself is no contact of its parties' (it counts as its own record)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_scoring import NIGHT, _family_online_and_batch, _withheld_request, _without

    from escalation_risk.features import activity
    ds = small_district
    p, inc = ds.incident_parties, ds.incidents
    late = p[p["added_at"].notna()].merge(inc[["incident_id", "reported_at", "kind"]], on="incident_id")
    late = late[(late["kind"] == "dispute") & (late["added_at"] > late["reported_at"] + pd.Timedelta(days=1))
                & (late["reported_at"] >= "2024-09-01") & (late["added_at"] < NIGHT - pd.Timedelta(days=2))]
    withheld = list(late["incident_id"].drop_duplicates().iloc[:8])
    assert len(withheld) == 8
    base = _without(ds, withheld)
    for d in withheld:
        request = _withheld_request(ds, d)
        # The day after the last arrival: the batch's party timelines hold the dispute then.
        as_of = pd.DataFrame(request[1])["added_at"].max() + pd.Timedelta(days=1)
        online, batch = _family_online_and_batch(base, request, d, as_of, activity.compute)
        for name in NAMES:
            np.testing.assert_allclose(online[name][0], batch[name], rtol=1e-12, err_msg=f"{d} {name}")


@pytest.mark.parametrize("family", ["activity", "separation"])
def test_scoring_skips_the_families_the_model_does_not_read(small_model, small_district, monkeypatch, family):
    """The night's batch skips the families a model leaves out, as online scoring does (one
    rule, ``skipped_families``): a family off by default (OPTIONAL in features/__init__.py)
    is never computed for the default model, nor for its feature rows elsewhere."""
    import importlib
    module = importlib.import_module(f"escalation_risk.features.{family}")
    names = [f.name for f in REGISTRY if f.family == family]
    assert names and not set(names) & set(small_model.feature_names)
    before = small_model.score(small_district, "2025-03-01")

    def refuse(idx, P):
        raise AssertionError(f"{family} computed for a model that does not read it")

    monkeypatch.setattr(module, "compute", refuse)
    after = small_model.score(small_district, "2025-03-01")
    pd.testing.assert_frame_equal(before, after)
    # The model's feature rows elsewhere (similar cases, drift, the desk) skip it too, with the
    # same values for what the model reads.
    pts = pd.DataFrame({"dispute_id": after["dispute_id"].iloc[:20].to_numpy(),
                        "as_of": [pd.Timestamp("2025-03-01")] * 20})
    X = small_model.features(small_district, pts)
    from escalation_risk.cases import case_index, similar_cases
    index = case_index(small_model, small_district)  # every dispute's row, through the model's features
    similar_cases(small_model, small_district, pts["dispute_id"].iloc[0], "2025-03-01", k=3, index=index)
    # Without a model's features every family is computed, as before.
    with pytest.raises(AssertionError, match=f"{family} computed"):
        build_features(small_district, pts)
    monkeypatch.undo()
    full = build_features(small_district, pts, lexicon=small_model.lexicon, text=small_model.text_model)
    assert set(names) <= set(full.columns) and not set(names) & set(X.columns)
    pd.testing.assert_frame_equal(X[list(small_model.feature_names)], full[list(small_model.feature_names)])


def test_the_card_says_why_activity_is_off():
    """Each family left out by default is in the ablation's table or has its own note, and the
    card shows the note (else a rebuilt card lists the family as off with no word on why)."""
    from escalation_risk.model.training import ABLATION, FAMILIES_OFF
    from escalation_risk.model_card import _ablation_section
    card = _ablation_section()
    tabled = {r["without"] for r in ABLATION["rows"]}
    for fam in FAMILIES_OFF:
        assert fam in tabled or (isinstance(ABLATION.get(fam), str) and ABLATION[fam] in card), fam
    assert "activity" in ABLATION["verdict"] and "all four" not in ABLATION["verdict"]
