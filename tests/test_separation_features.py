"""The separation family (parties who stopped living together, a party who moved out): known
answers on the hand-built district, the point-in-time rule and batch/online parity on a
generated one, and its sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from escalation_risk.features import REGISTRY, build_features
from escalation_risk.features.sentences import render
from escalation_risk.model.points import example_points

NAMES = ["sep_pair_days_apart", "sep_moved_out_days"]


def _feat(ds, dispute_id: str, as_of: str) -> pd.Series:
    return build_features(ds, pd.DataFrame({"dispute_id": [dispute_id], "as_of": [as_of]})).iloc[0]


def test_separation_known_answers(tiny_ds):
    # d1 is between p1 and his wife p2, who share h1 until p2 leaves it on 2024-06-01.
    before = _feat(tiny_ds, "d1", "2024-05-31T00:00")
    assert np.isnan(before["sep_pair_days_apart"]) and np.isnan(before["sep_moved_out_days"])
    after = _feat(tiny_ds, "d1", "2024-06-11T00:00")
    assert after["sep_pair_days_apart"] == pytest.approx(10.0)
    assert after["sep_moved_out_days"] == pytest.approx(10.0)
    # d2: p1 and the neighbour p4 never shared a household, and neither moved out.
    d2 = _feat(tiny_ds, "d2", "2024-06-11T00:00")
    assert np.isnan(d2["sep_pair_days_apart"]) and np.isnan(d2["sep_moved_out_days"])


def test_separation_is_point_in_time_and_not_empty(small_district):
    when = pd.Timestamp("2024-09-01")
    pts = example_points(small_district.cut(when), every_days=30, max_rescores=6, until=when)
    pts = pts[pts["as_of"] <= when].reset_index(drop=True)
    a = build_features(small_district.cut(when), pts)[NAMES]
    b = build_features(small_district, pts)[NAMES]
    pd.testing.assert_frame_equal(a, b)
    assert a["sep_moved_out_days"].notna().any() and (a.dropna() >= 0).all().all()


def test_separation_online_equals_batch(small_district):
    """A dispute the history never saw, scored from its dicts, against the batch with it."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_scoring import NIGHT, _with, _withheld_request, _without

    from escalation_risk.features import history_index, points_from_records, separation
    ds = small_district
    inc = ds.incidents
    hm = ds.household_members.dropna(subset=["end_date"])
    movers = set(hm["person_id"])
    p = ds.incident_parties
    cand = inc[(inc["kind"] == "dispute") & (inc["reported_at"] >= "2024-09-01")
               & (inc["reported_at"] < NIGHT - pd.Timedelta(days=2))]
    with_mover = p[p["incident_id"].isin(cand["incident_id"]) & p["party_id"].isin(movers)]["incident_id"]
    withheld = list(with_mover.drop_duplicates().iloc[:8])
    assert len(withheld) == 8
    base = _without(ds, withheld)
    idx = history_index(base)
    seen = 0
    for d in withheld:
        row, parties, meds, notes, own = _withheld_request(ds, d)
        pa = pd.DataFrame(parties)
        as_of = NIGHT
        P = points_from_records(idx, pd.DataFrame([row]), pa, as_of,
                                mediations=pd.DataFrame(meds) if meds else None,
                                notes=pd.DataFrame(notes) if notes else None)
        online = separation.compute(idx, P)
        batch = build_features(_with(base, own), pd.DataFrame({"dispute_id": [d], "as_of": [as_of]})).iloc[0]
        for name in NAMES:
            np.testing.assert_allclose(online[name][0], batch[name], rtol=1e-12, err_msg=f"{d} {name}")
        seen += int(not np.isnan(batch["sep_moved_out_days"]))
    assert seen > 0


def test_separation_reads_in_both_languages():
    for name in NAMES:
        assert REGISTRY[name].family == "separation" and REGISTRY[name].zh
        assert "12" in render(name, {name: 12.0}, "en") and "12" in render(name, {name: 12.0}, "zh")
        assert render(name, {name: np.nan}, "en") and render(name, {name: np.nan}, "zh")


def test_a_default_model_does_not_read_separation(small_model):
    from escalation_risk.model.training import FAMILIES_OFF
    assert "separation" in FAMILIES_OFF
    assert not {f.name for f in REGISTRY if f.family == "separation"} & set(small_model.feature_names)
