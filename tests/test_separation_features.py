"""The separation family (parties who stopped living together, a party who moved out): known
answers on the hand-built district, the point-in-time rule and batch/online parity on a
generated one, and its sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import same_when_cut

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


def _ds(members: list[tuple[str, str, str, str | None, str | None]], extra_dispute: bool = False):
    """The hand-built district with these household memberships (household, person, role,
    start, end); h3 is a second home at pl2. ``extra_dispute``: d4, between p2 and the
    neighbour p4, reported 2024-06-05."""
    from conftest import KEY, tiny_tables

    from escalation_risk import Dataset
    t = tiny_tables()
    t["households"] = pd.DataFrame({"household_id": ["h1", "h2", "h3"], "place_id": ["pl1", "pl2", "pl2"],
                                    "tenure": ["owned", "rented", "rented"]})
    t["household_members"] = pd.DataFrame(members, columns=["household_id", "person_id", "role", "start_date",
                                                            "end_date"])
    if extra_dispute:
        inc = t["incidents"]
        t["incidents"] = pd.concat([inc, pd.DataFrame({
            "incident_id": ["d4"], "kind": ["dispute"], "category": ["neighbor"], "occurred_at": ["2024-06-05"],
            "reported_at": ["2024-06-05"], "place_id": ["pl2"], "source": ["walk_in"], "status": ["open"],
            "closed_at": [None], "amount": [None], "description": ["邻里争执"], "related_incident_id": [None]})],
            ignore_index=True)
        t["incident_parties"] = pd.concat([t["incident_parties"], pd.DataFrame({
            "incident_id": ["d4", "d4"], "party_id": ["p2", "p4"], "party_type": ["person", "person"],
            "role": ["complainant", "respondent"]})], ignore_index=True)
    return Dataset.from_frames(pseudonym_key=KEY, **t)


P4 = ("h2", "p4", "head", "2024-01-01", None)


def _none(x: pd.Series) -> bool:
    return bool(np.isnan(x["sep_pair_days_apart"]) and np.isnan(x["sep_moved_out_days"]))


def test_moving_together_is_not_separating():
    """Scenario 1: p1 and p2 leave h1 on 06-01 and move into h3 together."""
    ds = _ds([("h1", "p1", "head", None, "2024-06-01"), ("h1", "p2", "spouse", None, "2024-06-01"),
              ("h3", "p1", "head", "2024-06-01", None), ("h3", "p2", "spouse", "2024-06-01", None), P4])
    x = _feat(ds, "d1", "2024-06-11T00:00")
    assert x["pair_cohabit"] == 1 and _none(x)
    # Had only p1 moved into h3 (p2 to h2, alone), both are ten days.
    ds = _ds([("h1", "p1", "head", None, "2024-06-01"), ("h1", "p2", "spouse", None, "2024-06-01"),
              ("h3", "p1", "head", "2024-06-01", None), ("h2", "p2", "other", "2024-06-01", None), P4])
    y = _feat(ds, "d1", "2024-06-11T00:00")
    assert y["pair_cohabit"] == 0
    assert y["sep_pair_days_apart"] == pytest.approx(10.0) and y["sep_moved_out_days"] == pytest.approx(10.0)


@pytest.mark.parametrize("head_from", ["2024-06-01", "2024-06-02"])
def test_a_role_change_is_not_a_move(head_from):
    """Scenario 2: p2's spouse row in h1 ends on 06-01 and her head row in h1 starts that day
    (or the next: a re-registration); p1 stays."""
    ds = _ds([("h1", "p1", "head", None, None), ("h1", "p2", "spouse", None, "2024-06-01"),
              ("h1", "p2", "head", head_from, None), P4])
    x = _feat(ds, "d1", "2024-06-11T00:00")
    assert x["pair_cohabit"] == 1 and _none(x)
    # Point in time: half a day after the end, the new row (06-02) is not known yet.
    z = _feat(ds, "d1", "2024-06-01T12:00")
    if head_from == "2024-06-01":
        assert _none(z)
    else:
        assert z["sep_pair_days_apart"] == pytest.approx(0.5) and z["sep_moved_out_days"] == pytest.approx(0.5)


def test_after_a_role_change_the_one_who_leaves_moved_out():
    """p2's role changes on 06-01 (she stays), p1 leaves h1 on 06-05: the pair separated on
    06-05, p1 moved out then, and p2 (alone on d4 with the neighbour) never moved."""
    ds = _ds([("h1", "p1", "head", None, "2024-06-05"), ("h1", "p2", "spouse", None, "2024-06-01"),
              ("h1", "p2", "head", "2024-06-01", None), P4], extra_dispute=True)
    x = _feat(ds, "d1", "2024-06-11T00:00")
    assert x["sep_pair_days_apart"] == pytest.approx(6.0) and x["sep_moved_out_days"] == pytest.approx(6.0)
    assert np.isnan(_feat(ds, "d4", "2024-06-11T00:00")["sep_moved_out_days"])


def test_a_shared_household_at_different_times_is_not_living_together():
    """p1 was a member of h2 from 2020 until 2023-06-01, before the neighbour p4 moved in
    (2024-01-01): d2's parties never lived together. Had p1 stayed until 2024-03-01, they did."""
    ds = _ds([("h1", "p1", "head", None, None), ("h1", "p2", "spouse", None, None),
              ("h2", "p1", "tenant", "2020-01-01", "2023-06-01"), P4])
    x = _feat(ds, "d2", "2024-06-11T00:00")
    assert x["pair_cohabit"] == 0 and _none(x)  # and leaving an empty h2 is no move away from anyone
    ds = _ds([("h1", "p1", "head", None, None), ("h1", "p2", "spouse", None, None),
              ("h2", "p1", "tenant", "2020-01-01", "2024-03-01"), P4])
    y = _feat(ds, "d2", "2024-06-11T00:00")
    days = (pd.Timestamp("2024-06-11") - pd.Timestamp("2024-03-01")).days
    assert y["sep_pair_days_apart"] == pytest.approx(days) and y["sep_moved_out_days"] == pytest.approx(days)


def test_separated_pairs_do_not_live_together_on_a_moving_district():
    """With households that move (``realistic_residence``), a dispute of two parties with a
    separation on record is never one whose parties live together."""
    from conftest import KEY

    from escalation_risk import Dataset
    from escalation_risk.synth.tables import generate_tables
    tables, _ = generate_tables(4000, seed=2, realistic_residence=True)
    ds = Dataset.from_frames(pseudonym_key=KEY, **tables)
    pts = example_points(ds, every_days=30, max_rescores=6, until="2025-06-01")
    X = build_features(ds, pts)
    persons = ds.incident_parties[ds.incident_parties["party_type"] == "person"]
    two = persons.groupby("incident_id")["party_id"].nunique() == 2
    pair = X["dispute_id"].map(two).fillna(False).astype(bool) & X["sep_pair_days_apart"].notna()
    assert pair.sum() > 20 and (X.loc[pair, "pair_cohabit"] == 0).all()


def test_separation_is_point_in_time_and_not_empty(small_district):
    a = same_when_cut(small_district, NAMES)
    assert a["sep_moved_out_days"].notna().any() and (a.dropna() >= 0).all().all()


def test_separation_online_equals_batch(small_district):
    """A dispute the history never saw, scored from its dicts, against the batch with it."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_scoring import NIGHT, _family_online_and_batch, _withheld_request, _without

    from escalation_risk.features import separation
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
    seen = 0
    for d in withheld:
        online, batch = _family_online_and_batch(base, _withheld_request(ds, d), d, NIGHT, separation.compute)
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

