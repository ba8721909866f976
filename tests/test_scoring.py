"""score_dispute(): the batch number, from plain dicts, safely under threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from escalation_risk import Dataset, DataValidationError, Scorer, build_features
from escalation_risk.features import history_index
from escalation_risk.response import PLANS

NIGHT = pd.Timestamp("2025-06-30")
from conftest import KEY  # noqa: E402


@pytest.fixture(scope="module")
def batch(small_model, small_district):
    return small_model.score(small_district, NIGHT, reasons_for="all").set_index("dispute_id")


@pytest.fixture(scope="module")
def scorer(small_model, small_district):
    return Scorer(small_model, small_district)


def _request(ds, dispute_id):
    row = ds.incidents[ds.incidents["incident_id"] == dispute_id].iloc[0].to_dict()
    parties = ds.incident_parties[ds.incident_parties["incident_id"] == dispute_id].to_dict("records")
    meds = ds.mediations[ds.mediations["incident_id"] == dispute_id].to_dict("records")
    return row, parties, meds


def test_batch_and_online_give_the_same_probability(small_district, batch, scorer):
    ids = batch.index.to_series().sample(min(150, len(batch)), random_state=0)
    for d in ids:
        row, parties, meds = _request(small_district, d)
        a = scorer.score_dispute(row, parties, mediations=meds, as_of=NIGHT)
        assert abs(a.probability - batch.loc[d, "probability"]) < 1e-9
        assert a.level == batch.loc[d, "level"]
        assert [r["feature"] for r in a.reasons] == batch.loc[d, "reason_features"]
        assert a.plan == batch.loc[d, "plan"] and a.model_version == scorer.model.version


def test_plans_agree_with_the_nightly_batch_for_every_level(small_model, small_district, scorer):
    """The batch computes reasons only for alerts (the nightly default); the plans must not
    notice: every open dispute, blue ones included, gets the same plan on both paths."""
    nightly = small_model.score(small_district, NIGHT).set_index("dispute_id")
    assert (nightly["level"] == "blue").any() and (nightly["level"] != "blue").any()
    assert (nightly.loc[nightly["level"] == "blue", "plan"] == "routine_follow_up").all()
    ids = nightly.index.to_series().sample(min(120, len(nightly)), random_state=3)
    for d in ids:
        row, parties, meds = _request(small_district, d)
        a = scorer.score_dispute(row, parties, mediations=meds, as_of=NIGHT, top_reasons=1)
        assert (a.level, a.plan) == (nightly.loc[d, "level"], nightly.loc[d, "plan"]), d
        assert a.plan in PLANS and len(a.reasons) <= 1


def test_plain_strings_work_like_typed_rows(small_district, batch, scorer):
    d = batch.index[0]
    row, parties, _ = _request(small_district, d)
    as_text = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()
               if not (isinstance(v, float) and np.isnan(v)) and v is not pd.NaT}
    as_text = {k: (str(v) if k in ("kind", "category", "source", "status") else v) for k, v in as_text.items()}
    # Missing values are left out, as a form would leave them blank (str(NaT) is not a date).
    plain = [{k: str(v) for k, v in p.items() if k != "incident_id" and not pd.isna(v)} for p in parties]
    a = scorer.score_dispute(as_text, plain,
                             as_of="2025-06-30")
    assert abs(a.probability - batch.loc[d, "probability"]) < 1e-9


def test_bad_or_missing_fields_get_the_file_errors(small_district, scorer):
    first = small_district.incidents.query("kind == 'dispute'").iloc[0]["incident_id"]
    row, parties, _ = _request(small_district, first)
    with pytest.raises(DataValidationError, match="column 'category'.*unknown code"):
        scorer.score_dispute({**row, "category": "alien_abduction"}, parties, as_of=NIGHT)
    bad = {k: v for k, v in row.items() if k != "reported_at"}
    with pytest.raises(DataValidationError, match="column 'reported_at'.*required column is missing"):
        scorer.score_dispute(bad, parties, as_of=NIGHT)
    with pytest.raises(DataValidationError, match="must not be before occurred_at"):
        scorer.score_dispute({**row, "reported_at": row["occurred_at"] - pd.Timedelta(days=1)}, parties, as_of=NIGHT)
    with pytest.raises(DataValidationError, match="column 'role'"):
        scorer.score_dispute(row, [{**parties[0], "role": "bystander"}], as_of=NIGHT)
    with pytest.raises(DataValidationError, match="scores disputes only"):
        scorer.score_dispute({**row, "kind": "police_call"}, parties, as_of=NIGHT)


# ----------------------------------------------------------------------------- disputes the history never saw

def _withheld_set(ds, n=54, seed=0) -> list[str]:
    """Disputes of several kinds: with mediations, with organisations, between people with
    long histories, and others across the categories."""
    inc, parties = ds.incidents, ds.incident_parties
    cand = inc[(inc["kind"] == "dispute") & (inc["reported_at"] >= "2024-09-01")
               & (inc["reported_at"] < NIGHT - pd.Timedelta(days=45))]
    ids = cand["incident_id"]
    has_med = ids.isin(ds.mediations["incident_id"])
    has_org = ids.isin(parties.loc[parties["party_type"] == "organization", "incident_id"])
    records = parties[parties["party_type"] == "person"].groupby("party_id")["incident_id"].nunique()
    busy = parties[(parties["party_type"] == "person") & parties["party_id"].map(records).ge(6)]["incident_id"]
    long_hist = ids.isin(busy)
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for mask in (has_med, has_org, long_hist, ~(has_med | has_org | long_hist)):
        pool = [d for d in ids[mask.to_numpy()] if d not in chosen]
        chosen += list(rng.choice(pool, size=min(n // 4, len(pool)), replace=False))
    return chosen


def _without(ds, withheld: list[str]) -> Dataset:
    """The dataset without the withheld disputes, their parties, mediations and the later
    records that name them (which cannot exist without them)."""
    inc = ds.incidents
    gone = set(withheld)
    while True:
        more = set(inc.loc[inc["related_incident_id"].isin(gone), "incident_id"]) - gone
        if not more:
            break
        gone |= more
    t = ds.tables()
    t["incidents"] = inc[~inc["incident_id"].isin(gone)].reset_index(drop=True)
    for name in ("incident_parties", "mediations", "incident_notes"):
        t[name] = t[name][~t[name]["incident_id"].isin(gone)].reset_index(drop=True)
    return Dataset(**t)


def _with(ds: Dataset, rows: dict[str, pd.DataFrame]) -> Dataset:
    t = ds.tables()
    for name, df in rows.items():
        t[name] = pd.concat([t[name], df], ignore_index=True)
    return Dataset(**t)


def _withheld_request(ds, d):
    """A withheld dispute as a request (row, parties, mediations, notes) and as the tables
    that add it to a history (``own``, typed as ``ds``'s). Its notes travel with the request
    (the text and its model read them), as they reach the history."""
    row, parties, meds = _request(ds, d)
    notes = ds.incident_notes[ds.incident_notes["incident_id"] == d].to_dict("records")
    row = {**row, "related_incident_id": None, "status": "open", "closed_at": None}
    own = {"incidents": pd.DataFrame([row]), "incident_parties": pd.DataFrame(parties),
           "mediations": pd.DataFrame(meds) if meds else ds.mediations.iloc[:0],
           "incident_notes": pd.DataFrame(notes) if notes else ds.incident_notes.iloc[:0]}
    return row, parties, meds, notes, {k: v.astype(getattr(ds, k).dtypes.to_dict()) for k, v in own.items()}


def _family_online_and_batch(base: Dataset, request, d: str, as_of, compute) -> tuple[dict, pd.Series]:
    """One feature family (``compute``, e.g. ``features.activity.compute``) for a withheld
    dispute ``d`` (``request``: :func:`_withheld_request`'s answer): online, from the
    request's records against ``base``'s index, and the batch's row on ``base`` with it."""
    from escalation_risk.features import points_from_records
    row, parties, meds, notes, own = request
    idx = history_index(base)
    P = points_from_records(idx, pd.DataFrame([row]), pd.DataFrame(parties), as_of,
                            mediations=pd.DataFrame(meds) if meds else None,
                            notes=pd.DataFrame(notes) if notes else None)
    batch = build_features(_with(base, own), pd.DataFrame({"dispute_id": [d], "as_of": [as_of]})).iloc[0]
    return compute(idx, P), batch


def test_disputes_never_seen_get_the_batch_answer(small_model, small_district):
    """Each withheld dispute, one at a time: score_dispute on the history without it, then
    after Scorer.add of its records, against RiskModel.score on the data with it (built
    from scratch). Probability, level, plan and reasons agree."""
    withheld = _withheld_set(small_district)
    assert len(withheld) >= 50
    base = _without(small_district, withheld)
    scorer = Scorer(small_model, base)
    rng = np.random.default_rng(1)
    cats, levels, with_meds, with_notes = set(), [], 0, 0
    for d in withheld:
        row, parties, meds, notes, own = _withheld_request(small_district, d)
        as_of = row["reported_at"] + pd.Timedelta(days=int(rng.integers(0, 40)), seconds=int(rng.integers(0, 86400)))
        ref = _with(scorer.history, own)
        b = small_model.score(ref, pd.DataFrame({"dispute_id": [d], "as_of": [as_of]}), reasons_for="all").iloc[0]
        before = scorer.score_dispute(row, parties, mediations=meds, notes=notes, as_of=as_of)
        scorer.add(**{k: v for k, v in own.items() if len(v)})
        after = scorer.score_dispute(row, parties, mediations=meds, notes=notes, as_of=as_of)
        with_notes += any(n["recorded_at"] <= as_of for n in notes)
        for a in (before, after):
            assert abs(a.probability - b["probability"]) < 1e-9, d
            assert (a.level, a.plan) == (b["level"], b["plan"]), d
            assert [r["feature"] for r in a.reasons] == b["reason_features"], d
            assert [r["en"] for r in a.reasons] == b["reasons"], d
        cats.add(row["category"])
        levels.append(b["level"])
        with_meds += any(m["held_at"] <= as_of for m in meds)
    assert len(cats) >= 5 and with_meds >= 10 and with_notes >= 5
    assert set(levels) - {"blue"}, "no alerted dispute among the withheld: the plan rule went untested"
    # The history grown by add() is the history built from scratch on the same rows.
    assert len(scorer.history.incidents) == len(base.incidents) + len(withheld)


def test_own_records_do_not_count_in_the_parties_history(small_district):
    """The counts the issue found apart: a dispute's own counterparties and failed mediations."""
    med = small_district.mediations
    d = med[med["outcome"] == "failed"]["incident_id"].value_counts().index[0]
    parties = small_district.incident_parties
    people = parties[(parties["incident_id"] == d) & (parties["party_type"] == "person")]["party_id"].to_numpy()
    assert len(people) >= 2
    when = med[med["incident_id"] == d]["held_at"].max() + pd.Timedelta(days=1)
    rest = _without(small_district, [d])
    own = {name: getattr(small_district, name)[getattr(small_district, name)["incident_id"] == d]
           for name in ("incidents", "incident_parties", "mediations")}
    own["incidents"] = own["incidents"].assign(related_incident_id=pd.NA)
    with_it = _with(rest, own)
    x = build_features(with_it, pd.DataFrame({"dispute_id": [d], "as_of": [when]})).iloc[0]
    t = np.full(len(people), pd.Timestamp(when).value // 10**9)
    idx, full = history_index(rest), history_index(with_it)
    ks, kf = idx.person_ints(people), full.person_ints(people)
    # The parties' counts on the history without the dispute ...
    assert x["hist_failed_mediation_all_max"] == idx.person_events["failed_mediation"].count(ks, None, t).max()
    assert x["hist_counterparties_max"] == idx.counterparties.count(ks, None, t).max()
    # ... which the dispute does raise in the index that holds it (the test bites).
    assert full.person_events["failed_mediation"].count(kf, None, t).max() > x["hist_failed_mediation_all_max"]
    assert full.counterparties.count(kf, None, t).sum() > x["hist_counterparties_sum"]


def test_add_grows_the_index_like_a_build_from_scratch(small_model, small_district):
    """Every kind of new record, added in several calls: the index grown in place gives the
    features of an index built from scratch on the same history, for every open dispute."""
    from escalation_risk.features import build_features as features_of
    from escalation_risk.model.points import open_points

    ds = small_district
    sc = Scorer(small_model, ds, pseudonym_key=KEY)
    inc, parties = ds.incidents, ds.incident_parties
    people = ds.persons["person_id"].tolist()
    open_now = open_points(ds, NIGHT)["dispute_id"]
    old_dispute = inc[inc["incident_id"].isin(open_now) & (inc["reported_at"] < "2025-06-01")].iloc[0]["incident_id"]
    other_open = inc[inc["incident_id"].isin(open_now) & (inc["incident_id"] != old_dispute)].iloc[-1]["incident_id"]
    # An existing follow-up of an open dispute: a late party touches it, not its dispute.
    old_call = inc[inc["related_incident_id"].isin(open_now) & ~inc["related_incident_id"].isin([old_dispute])
                   & (inc["kind"] == "police_call")].iloc[0]["incident_id"]
    with_org = parties[parties["party_type"] == "organization"].iloc[0]
    day = pd.Timestamp("2025-06-20")
    # 1. New places, an organisation, a household with members, flags and a relation.
    sc.add(places=[{"place_id": "PL-N1", "grid_id": "G-NEW", "town": "t", "district": "d",
                    "place_type": "residential"}],
           organizations=[{"org_id": "ORG-N1", "org_type": "enterprise", "place_id": "PL-N1", "name": "新厂"}],
           households=[{"household_id": "HH-N1", "place_id": "PL-N1", "tenure": "rented"}],
           household_members=[{"household_id": "HH-N1", "person_id": people[0], "role": "head",
                               "start_date": "2025-06-01"},
                              {"household_id": "HH-N1", "person_id": people[1], "role": "other",
                               "start_date": "2025-06-01"}],
           person_flags=[{"person_id": people[0], "flag": "substance", "recorded_at": "2025-06-10"}],
           relations=[{"person_a": people[0], "person_b": people[2], "relation": "creditor_debtor",
                       "since": "2025-05-01"}])
    # 2. A new person, new disputes (one at the new place against the new organisation, one
    #    between people who already met), a follow-up call on an old dispute, a mediation of
    #    an old dispute and a late party added to it.
    sc.add(persons=[{"person_id": "P-N1", "birth_year": 1990, "gender": "male", "hukou": "migrant",
                     "employment": "unemployed", "name": "新人", "id_number": None, "phone": None}],
           incidents=[{"incident_id": "D-N1", "kind": "dispute", "category": "labor_wage", "occurred_at": day,
                       "reported_at": day, "place_id": "PL-N1", "source": "walk_in", "description": "讨薪，扬言报复"},
                      {"incident_id": "D-N2", "kind": "dispute", "category": "neighbor", "occurred_at": day,
                       "reported_at": day, "source": "grid_worker"},
                      {"incident_id": "C-N1", "kind": "police_call", "category": "neighbor", "occurred_at": day,
                       "reported_at": day, "source": "police_110", "related_incident_id": old_dispute,
                       "description": "再次冲突，拿刀"},
                      {"incident_id": "C-N2", "kind": "complaint", "category": "neighbor", "occurred_at": day,
                       "reported_at": day, "source": "hotline_12345", "related_incident_id": other_open}],
           incident_parties=[{"incident_id": "D-N1", "party_id": "P-N1", "party_type": "person",
                              "role": "complainant"},
                             {"incident_id": "D-N1", "party_id": "ORG-N1", "party_type": "organization",
                              "role": "respondent"},
                             {"incident_id": "D-N1", "party_id": with_org["party_id"], "party_type": "organization",
                              "role": "respondent"},
                             {"incident_id": "D-N2", "party_id": people[0], "party_type": "person", "role": "other"},
                             {"incident_id": "D-N2", "party_id": people[1], "party_type": "person", "role": "other"},
                             {"incident_id": "C-N1", "party_id": people[3], "party_type": "person", "role": "other"},
                             {"incident_id": old_dispute, "party_id": "P-N1", "party_type": "person",
                              "role": "respondent"},
                             {"incident_id": old_call, "party_id": people[5], "party_type": "person",
                              "role": "witness"}],
           incident_notes=[{"note_id": "N-N1", "incident_id": old_dispute, "recorded_at": day,
                            "text": "对方扬言要报复"},
                           {"note_id": "N-N2", "incident_id": "D-N1", "recorded_at": day, "text": "工人聚集"}],
           mediations=[{"mediation_id": "M-N1", "incident_id": old_dispute, "held_at": day,
                        "mediator_type": "court", "outcome": "failed"},
                       {"mediation_id": "M-N2", "incident_id": "D-N2", "held_at": day + pd.Timedelta(days=2),
                        "mediator_type": "grid_worker", "outcome": "failed"}])
    grown = sc.history
    assert sc._state.idx is grown.cache["history_index"]
    assert set(sc._state.idx.append_cache) == {"incident_parties", "mediations", "incident_notes", "linkage"}  # grown
    fresh = Dataset(**grown.tables())
    assert "history_index" not in fresh.cache
    pts = open_points(grown, NIGHT)
    assert {"D-N1", "D-N2", old_dispute} <= set(pts["dispute_id"])
    pd.testing.assert_frame_equal(features_of(grown, pts), features_of(fresh, pts))
    x = features_of(grown, pts).set_index("dispute_id")
    assert x.loc["D-N1", "n_org_parties"] == 2 and x.loc[old_dispute, "followups"] >= 1
    assert x.loc["D-N2", "pair_cohabit"] == 1 and x.loc["D-N2", "mediations_failed"] == 1


@pytest.mark.parametrize("limit,fold", [(None, "background"), (40, "inline"), (40, "background"), (40, "never")])
def test_many_adds_in_a_row_equal_a_rebuilt_index(small_model, small_district, monkeypatch, limit, fold):
    """Sixty adds in a row, as a service's day brings them: new disputes of known people,
    follow-up calls, mediations, late parties and notes on old and on just-added disputes.
    The grown index (its deltas kept, or with ``limit`` merged into the base every few
    adds, history tables folded too: inline, on a background thread while the next adds
    arrive, or never) gives every open dispute the features of an index built from
    scratch, and score_dispute the rebuilt history's batch probability."""
    import threading

    from escalation_risk import scoring
    from escalation_risk.features import build_features as features_of
    from escalation_risk.features import delta
    from escalation_risk.model.points import open_points

    if limit is not None:
        monkeypatch.setattr(delta, "delta_limit", lambda n_base: limit)
    # A background fold is held until three adds have arrived after its snapshot, so the
    # adds made during a fold are re-applied (one at a time outside the lock, CATCH_UP=1).
    gate, reapplied, released = threading.Event(), [], []
    real_fold, real_reapply = scoring._fold, scoring._reapply

    def held_fold(state):
        assert gate.wait(30)
        gate.clear()
        return real_fold(state)

    def counted_reapply(state, adds, lexicon):
        reapplied.append(len(adds))
        return real_reapply(state, adds, lexicon)

    if fold == "background":
        monkeypatch.setattr(scoring, "_fold", held_fold)
        monkeypatch.setattr(scoring, "_reapply", counted_reapply)
        monkeypatch.setattr(scoring, "CATCH_UP", 1)
    ds = small_district
    rng = np.random.default_rng(7)
    sc = Scorer(small_model, ds, pseudonym_key=KEY, fold=fold)
    people = ds.persons["person_id"].to_numpy(dtype=object)
    open_now = open_points(ds, NIGHT)["dispute_id"].to_numpy(dtype=object)
    disputes = list(rng.choice(open_now, 10, replace=False))
    for j in range(60):
        day = pd.Timestamp("2025-06-01") + pd.Timedelta(hours=int(rng.integers(0, 24 * 28)))
        who = rng.choice(people, 3, replace=False)
        new = f"D-A{j}"
        incidents = [{"incident_id": new, "kind": "dispute", "category": "neighbor", "occurred_at": day,
                      "reported_at": day, "source": "grid_worker", "description": "邻里纠纷"}]
        parties = [{"incident_id": new, "party_id": p, "party_type": "person", "role": r}
                   for p, r in zip(who[:2], ("complainant", "respondent"))]
        extra: dict = {}
        earlier = disputes[int(rng.integers(0, len(disputes)))]
        if j % 3 == 0:
            incidents.append({"incident_id": f"C-A{j}", "kind": "police_call", "category": "neighbor",
                              "occurred_at": day, "reported_at": day, "source": "police_110",
                              "related_incident_id": earlier, "description": "再次冲突，扬言报复"})
            parties.append({"incident_id": f"C-A{j}", "party_id": who[2], "party_type": "person", "role": "other"})
        if j % 4 == 1:
            extra["mediations"] = [{"mediation_id": f"M-A{j}", "incident_id": earlier, "held_at": day,
                                    "mediator_type": "grid_worker", "outcome": "failed"}]
        if j % 5 == 2:
            parties.append({"incident_id": earlier, "party_id": who[2], "party_type": "person", "role": "witness",
                            "added_at": NIGHT - pd.Timedelta(days=1)})
        if j % 7 == 3:
            extra["incident_notes"] = [{"note_id": f"N-A{j}", "incident_id": earlier, "recorded_at": NIGHT,
                                        "text": "对方扬言要报复"}]
        sc.add(incidents=incidents, incident_parties=parties, **extra)
        disputes.append(new)
        job = sc._job
        if job is not None and job not in released and len(job.since) >= 3:
            released.append(job)  # once per job: a second set would let the next fold pass unheld
            gate.set()
    gate.set()  # the last fold may have had fewer than three adds
    assert sc.wait_for_fold(60) and sc.fold_error is None
    grown = sc.history
    if limit is None or fold == "never":
        assert sc.delta_size() > 0 and sc._state.history.n_added("incidents") == 80  # all still in the deltas
        assert sc.folds == 0
    elif fold == "inline":
        assert sc._state.history.n_added("incidents") < 40  # folded into the base tables
        assert sc.folds >= 2
    else:
        assert sc.folds >= 2 and sum(reapplied) >= 3 * (sc.folds - 1)  # adds arrived during each held fold
        assert sc._state.history.n_added("incidents") < 80
    fresh = Dataset(**grown.tables())
    pts = open_points(grown, NIGHT)
    assert set(disputes) <= set(pts["dispute_id"])
    pd.testing.assert_frame_equal(features_of(grown, pts), features_of(fresh, pts))
    batch = small_model.score(fresh, NIGHT).set_index("dispute_id")
    for d in disputes[-12:]:
        row, ps, meds = _request(grown, d)
        got = sc.score_dispute(row, ps, mediations=meds, as_of=NIGHT).probability
        assert got == pytest.approx(batch.loc[d, "probability"], abs=1e-12)


@pytest.mark.parametrize("kind", ["str", "int"])
def test_growing_id_index_answers_like_a_pandas_index(kind):
    from escalation_risk.features.id_index import IdIndex, positions

    def ids(a, b):
        return [f"id{i}" for i in range(a, b)] if kind == "str" else np.arange(a, b, dtype=np.int64) * 7
    grown = IdIndex(pd.Index(ids(0, 100)))
    for a in range(100, 12_000, 1_000):  # past the fold-in size: both layers exercised
        before = grown
        grown = grown.append(ids(a, a + 1_000))
        assert len(before) == a  # the old one is unchanged (readers keep their snapshot)
    plain = pd.Index(ids(0, 12_100))
    assert len(grown) == len(plain) and (grown.to_numpy() == plain.to_numpy()).all()
    probe = np.concatenate([np.asarray(ids(0, 12_100), dtype=object)[::97], np.asarray(ids(20_000, 20_010), object)])
    if kind == "int":
        probe = probe.astype(np.int64)
    assert (grown.get_indexer(probe) == plain.get_indexer(probe)).all()
    assert (positions(grown, probe[:10]) == plain.get_indexer(probe[:10])).all()
    assert (grown.take([0, 5_000, 12_099]) == plain.to_numpy()[[0, 5_000, 12_099]]).all()
    small = IdIndex(pd.Index(ids(0, 100_000))).append(ids(100_000, 100_010))
    assert small.extra and small.get_loc(ids(100_005, 100_006)[0]) == 100_005


def test_bad_calls_name_the_field_and_change_nothing(small_district, scorer):
    d = small_district.incidents.query("kind == 'dispute'").iloc[0]["incident_id"]
    row, parties, _ = _request(small_district, d)
    n = len(scorer.history.incidents)
    cases = [
        (({k: v for k, v in row.items() if k != "category"}, parties), {}, "column 'category'.*required column"),
        ((row, parties), {"as_of": "30/06/2025 noon"}, "column 'as_of'.*not an ISO 8601 timestamp.*30/06/2025"),
        ((row, parties), {"as_of": row["reported_at"] - pd.Timedelta(hours=1)},
         "column 'as_of'.*before the dispute's reported_at"),
        ((row, []), {"as_of": NIGHT}, "table 'incident_parties', column 'party_id'.*at least one party"),
        (({**row, "place_id": "PL-NOWHERE"}, parties), {"as_of": NIGHT},
         "column 'place_id'.*place the history does not hold.*'PL-NOWHERE'"),
        ((row, parties + [{"party_id": "ORG-NOWHERE", "party_type": "organization", "role": "respondent"}]),
         {"as_of": NIGHT}, "column 'party_id'.*organisation the history does not hold.*'ORG-NOWHERE'"),
        ((row, [{**parties[0], "incident_id": "OTHER"}]), {"as_of": NIGHT},
         "column 'incident_id'.*must be the scored dispute's incident_id"),
        ((row, parties), {"as_of": NIGHT, "mediations": [{"mediation_id": "m", "held_at": "2025-01-01",
                                                          "mediator_type": "court", "outcome": "maybe"}]},
         "table 'mediations', column 'outcome'.*unknown code"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(DataValidationError, match=message):
            scorer.score_dispute(*args, **kwargs)
    assert len(scorer.history.incidents) == n


def test_a_new_dispute_of_known_people(small_district, scorer):
    people = small_district.persons["person_id"].iloc[:2].tolist()
    dispute = {"incident_id": "NEW-1", "category": "debt", "occurred_at": "2025-06-28",
               "reported_at": "2025-06-29", "source": "walk_in", "amount": 50000,
               "description": "债务纠纷，对方扬言要报复，拿刀威胁"}
    parties = [{"party_id": people[0], "party_type": "person", "role": "complainant"},
               {"party_id": people[1], "party_type": "person", "role": "respondent"}]
    a = scorer.score_dispute(dispute, parties, as_of="2025-06-30")
    assert 0 <= a.probability <= 1 and a.dispute_id == "NEW-1"
    calm = scorer.score_dispute({**dispute, "description": "债务纠纷"}, parties, as_of="2025-06-30")
    assert calm.probability <= a.probability
    assert a.to_dict()["as_of"] == "2025-06-30T23:59:59.999999"  # a date naming a moment: its end (clock)


def test_add_appends_history_without_reload(small_model, small_district):
    sc = Scorer(small_model, small_district)
    people = small_district.persons["person_id"].iloc[:2].tolist()
    dispute = {"incident_id": "NEW-2", "kind": "dispute", "category": "neighbor", "occurred_at": "2025-06-20",
               "reported_at": "2025-06-20", "source": "grid_worker"}
    parties = [{"incident_id": "NEW-2", "party_id": p, "party_type": "person", "role": "other"} for p in people]
    before = sc.score_dispute(dispute, parties, as_of="2025-06-30")
    calls = [{"incident_id": f"NEW-2-c{i}", "kind": "police_call", "category": "neighbor",
              "occurred_at": f"2025-06-2{i}", "reported_at": f"2025-06-2{i}", "related_incident_id": "NEW-2",
              "description": "双方再次发生冲突，一方扬言报复"} for i in range(1, 4)]
    sc.add(incidents=[dispute] + calls,
           incident_parties=parties + [{**p, "incident_id": c["incident_id"]} for c in calls for p in parties])
    after = sc.score_dispute(dispute, parties, as_of="2025-06-30")
    assert len(sc.history.incidents) == len(small_district.incidents) + 4
    assert after.probability != before.probability
    with pytest.raises(DataValidationError, match="duplicate id"):
        sc.add(incidents=[dispute])
    assert len(sc.history.incidents) == len(small_district.incidents) + 4   # nothing changed


def test_thread_safe(small_district, batch, scorer):
    ids = list(batch.index[:40])
    reqs = [_request(small_district, d) for d in ids]
    with ThreadPoolExecutor(4) as pool:
        probs = list(pool.map(lambda r: scorer.score_dispute(r[0], r[1], mediations=r[2], as_of=NIGHT).probability,
                              reqs * 3))
    expected = [batch.loc[d, "probability"] for d in ids] * 3
    assert np.allclose(probs, expected, atol=1e-12, rtol=0)


def test_calls_during_an_add_see_one_history(small_model, small_district):
    """Calls racing an add() get the answer of the history before it or after it, never a mix."""
    import threading

    people = small_district.persons["person_id"].iloc[:2].tolist()
    dispute = {"incident_id": "RACE-1", "kind": "dispute", "category": "neighbor", "occurred_at": "2025-06-20",
               "reported_at": "2025-06-20", "source": "grid_worker"}
    parties = [{"incident_id": "RACE-1", "party_id": p, "party_type": "person", "role": "other"} for p in people]
    calls = [{"incident_id": f"RACE-c{i}", "kind": "police_call", "category": "neighbor",
              "occurred_at": f"2025-06-2{i}", "reported_at": f"2025-06-2{i}", "related_incident_id": "RACE-1",
              "description": "双方再次发生冲突，一方扬言报复"} for i in range(1, 4)]
    new = dict(incidents=[dispute] + calls,
               incident_parties=parties + [{**p, "incident_id": c["incident_id"]} for c in calls for p in parties])
    ref = Scorer(small_model, small_district)
    before = ref.score_dispute(dispute, parties, as_of=NIGHT).probability
    ref.add(**new)
    after = ref.score_dispute(dispute, parties, as_of=NIGHT).probability
    assert before != after
    sc = Scorer(small_model, small_district)
    seen: list[float] = []
    stop = threading.Event()

    def caller():
        while not stop.is_set():
            seen.append(sc.score_dispute(dispute, parties, as_of=NIGHT).probability)

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(caller) for _ in range(3)]
        sc.add(**new)
        last = sc.score_dispute(dispute, parties, as_of=NIGHT).probability
        stop.set()
        for f in futures:
            f.result()
    assert last == pytest.approx(after, abs=1e-12)
    assert seen and all(min(abs(p - before), abs(p - after)) < 1e-12 for p in seen)


def test_module_shortcut_uses_environment(tmp_path, monkeypatch, small_model, small_district):
    import escalation_risk.scoring as scoring
    small_model.save(tmp_path / "model")
    small_district.write(tmp_path / "data")
    monkeypatch.setenv("ESCALATION_RISK_MODEL", str(tmp_path / "model"))
    monkeypatch.setenv("ESCALATION_RISK_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(scoring, "_DEFAULT", None)
    d = small_district.incidents.query("kind == 'dispute' and reported_at < @NIGHT").iloc[-1]["incident_id"]
    row, parties, meds = _request(small_district, d)
    a = scoring.score_dispute(row, parties, mediations=meds, as_of=NIGHT)
    b = Scorer(small_model, small_district).score_dispute(row, parties, mediations=meds, as_of=NIGHT)
    assert a.probability == pytest.approx(b.probability, abs=1e-12)
    monkeypatch.delenv("ESCALATION_RISK_DATA")
    monkeypatch.setattr(scoring, "_DEFAULT", None)
    with pytest.raises(RuntimeError, match="ESCALATION_RISK_DATA"):
        scoring.score_dispute(row, parties)


def test_fold_mode_is_checked(small_model, small_district):
    with pytest.raises(ValueError, match="fold must be one of"):
        Scorer(small_model, small_district, fold="sometimes")


def test_adds_linking_known_people_rebuild_in_the_background(small_model, small_district, monkeypatch):
    """An add whose person record links two people the history held apart needs the index
    rebuilt. With fold="background" it arrives during a fold (which it supersedes), the
    rebuild runs on the job thread while more adds arrive (checked against every accepted
    row, the unseen ones included), and then everything is published at once: a reader
    scoring throughout only ever sees the history after some prefix of the adds, in order
    (before the linking add until the rebuild is published, never the later adds without
    it); afterwards the features equal a rebuilt index's and the scores the batch's."""
    import threading

    from escalation_risk import scoring
    from escalation_risk.features import build_features as features_of
    from escalation_risk.features import delta
    from escalation_risk.idnumbers import gb11643_check_digit
    from escalation_risk.model.points import open_points

    monkeypatch.setattr(delta, "delta_limit", lambda n_base: 12)
    gates = {"fold": threading.Event(), "rebuild": threading.Event()}
    real_fold = scoring._fold

    def held(kind, real):
        def run(*a, **kw):
            if threading.current_thread().name.startswith("scorer-"):  # the job, not an inline call
                assert gates[kind].wait(60)
            return real(*a, **kw)
        return run

    monkeypatch.setattr(scoring, "_fold", held("fold", real_fold))
    # Held in this process, before the fork: the child builds with the real _rebuilt.
    monkeypatch.setattr(scoring, "_rebuilt_apart", held("rebuild", scoring._rebuilt_apart))
    handed = []
    real_load = scoring.handover.load
    monkeypatch.setattr(scoring.handover, "load", lambda fd, *a: handed.append(fd) or real_load(fd, *a))
    built_here = []  # a job's builds seen by this process: none when the child built the index
    real_rebuilt = scoring._rebuilt

    def rebuilt(*a, **kw):
        if threading.current_thread().name.startswith("scorer-"):
            built_here.append(os.getpid())
        return real_rebuilt(*a, **kw)
    monkeypatch.setattr(scoring, "_rebuilt", rebuilt)
    ds = small_district
    people = ds.persons["person_id"].to_numpy(dtype=object)
    idn = "33010219800312457"
    idn += gb11643_check_digit(idn)

    def person(pid, id_number, phone):  # namesakes born the same year: two people until a record joins them
        return {"person_id": pid, "birth_year": 1980, "gender": "male", "hukou": "local", "employment": "employed",
                "name": "欧阳明远", "id_number": id_number, "phone": phone}

    def dispute(j, who, day, failed=False):
        new = f"D-L{j}"
        out = {"incidents": [{"incident_id": new, "kind": "dispute", "category": "neighbor", "occurred_at": day,
                              "reported_at": day, "source": "grid_worker", "description": "邻里纠纷，扬言报复"}],
               "incident_parties": [{"incident_id": new, "party_id": p, "party_type": "person", "role": r}
                                    for p, r in zip(who, ("complainant", "respondent"))]}
        if failed:
            out["mediations"] = [{"mediation_id": f"M-L{j}", "incident_id": new, "held_at": day,
                                  "mediator_type": "grid_worker", "outcome": "failed"}]
        return out

    day = pd.Timestamp("2025-06-10")
    adds = [{"persons": [person("P-LA", idn, "13912345671"), person("P-LB", None, "13987654322")],
             **dispute(0, ["P-LA", people[0]], day, failed=True)}]
    adds += [dispute(j, ["P-LA" if j % 2 else "P-LB", people[j]], day + pd.Timedelta(days=j), failed=j % 2 == 1)
             for j in range(1, 8)]
    bridge = len(adds)
    adds.append({"persons": [person("P-LR", idn, "13987654322")]})  # A's id number, B's phone: one person
    adds += [dispute(j, ["P-LR" if j % 2 else "P-LB", people[j]], day + pd.Timedelta(days=j)) for j in range(8, 14)]
    watched = ({"incident_id": "W-1", "kind": "dispute", "category": "neighbor", "occurred_at": NIGHT,
                "reported_at": NIGHT, "source": "grid_worker"},
               [{"incident_id": "W-1", "party_id": p, "party_type": "person", "role": "other"}
                for p in ("P-LB", people[20])])

    def score(sc):
        return sc.score_dispute(*watched, as_of=NIGHT).probability

    ref = Scorer(small_model, ds, pseudonym_key=KEY, fold="inline")
    expected = []
    for a in adds:
        ref.add(**a)
        expected.append(score(ref))
    assert ref.rebuilds == 1
    assert expected[bridge] != expected[bridge - 1]  # the link changes the watched answer (the test bites)

    sc = Scorer(small_model, ds, pseudonym_key=KEY, fold="background")
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(score(sc))

    thread = threading.Thread(target=reader)
    try:
        for a in adds[:bridge]:
            sc.add(**a)
        thread.start()
        assert sc._job is not None and sc._job.kind == "fold"  # held: the link arrives during a fold
        assert score(sc) == pytest.approx(expected[bridge - 1], abs=1e-12)
        sc.add(**adds[bridge])
        assert sc._job.kind == "rebuild" and sc.pending_adds == 1 and sc.rebuilds == 0
        gates["fold"].set()  # the superseded fold ends without publishing
        for a in adds[bridge + 1:bridge + 4]:
            sc.add(**a)  # P-LR is known only from the unseen add: checked against it
        with pytest.raises(DataValidationError):
            sc.add(persons=[person("P-LR", None, None)])  # a duplicate of an unseen row
        assert sc.pending_adds == 4 and sc.folds == 0
        assert score(sc) == pytest.approx(expected[bridge - 1], abs=1e-12)  # before the link, still
        gates["rebuild"].set()
        for a in adds[bridge + 4:]:  # during the catch-up or after it
            sc.add(**a)
        assert sc.wait_for_fold(60) and sc.fold_error is None
    finally:
        gates["fold"].set()
        gates["rebuild"].set()
        stop.set()
        if thread.is_alive():
            thread.join()
    assert sc.rebuilds == 1 and sc.pending_adds == 0
    # The rebuild ran in a forked child and its index was handed over (mapped), where forking works.
    assert len(handed) == (1 if scoring.forks.workers() > 1 else 0)
    assert built_here == ([] if scoring.forks.workers() > 1 else [os.getpid()])  # not redone here
    assert score(sc) == pytest.approx(expected[-1], abs=1e-12)
    # What the reader saw: the answers after prefixes of the adds, in order, and nothing else.
    assert len(seen) > 0
    at = bridge - 1
    for p in seen:
        while at < len(expected) and abs(p - expected[at]) > 1e-12:
            at += 1
        assert at < len(expected), f"a call saw {p}, the answer of no prefix of the adds (in order)"
    grown = sc.history
    assert grown.cache["history_index"].person_key["P-LB"] == grown.cache["history_index"].person_key["P-LA"]
    fresh = Dataset(**grown.tables())
    pts = open_points(grown, NIGHT)
    assert {"D-L0", "D-L13"} <= set(pts["dispute_id"])
    pd.testing.assert_frame_equal(features_of(grown, pts), features_of(fresh, pts))
    batch = small_model.score(fresh, NIGHT).set_index("dispute_id")
    for d in ("D-L3", "D-L8", "D-L13"):
        row, ps, meds = _request(grown, d)
        assert sc.score_dispute(row, ps, mediations=meds, as_of=NIGHT).probability == \
            pytest.approx(batch.loc[d, "probability"], abs=1e-12)


def test_adds_of_new_people_link_incrementally_and_keep_batch_parity(small_model, small_district):
    """Adds bringing person records (a new person; a known person's record under a new id,
    party to a new dispute; a second record of the person just added) are linked
    incrementally with the linkage parameters the scorer's index was built with, frozen.
    The batch on the same data, its linkage run with those parameters
    (``linking.incremental.relink``), gives the same features and score_dispute its
    probability; the batch re-fitting the parameters (the night) links the same people here."""
    from escalation_risk.features import build_features as features_of
    from escalation_risk.idnumbers import gb11643_check_digit
    from escalation_risk.linking import link_persons
    from escalation_risk.linking.incremental import relink
    from escalation_risk.model.points import open_points
    from escalation_risk.synth import generate_tables

    ds = small_district
    raw = generate_tables(4000, seed=2)[0]["persons"].set_index("person_id")  # small_district's identifiers
    busiest = ds.incident_parties.loc[ds.incident_parties["party_type"] == "person", "party_id"].value_counts()
    known = next(p for p in busiest.index if isinstance(raw.loc[p, "id_number"], str))
    sc = Scorer(small_model, ds, pseudonym_key=KEY, fold="never")
    day = pd.Timestamp("2025-06-20")
    people = ds.persons["person_id"].tolist()
    stem = "44030519880715123"

    def dispute(new, who, when):
        return {"incidents": [{"incident_id": new, "kind": "dispute", "category": "neighbor", "occurred_at": when,
                               "reported_at": when, "source": "grid_worker", "description": "邻里纠纷，扬言报复"}],
                "incident_parties": [{"incident_id": new, "party_id": p, "party_type": "person", "role": r}
                                     for p, r in zip(who, ("complainant", "respondent"))]}

    fresh_person = {"person_id": "P-NEW1", "birth_year": 1988, "gender": "male", "hukou": "migrant",
                    "employment": "unemployed", "name": "司徒明", "id_number": stem + gb11643_check_digit(stem),
                    "phone": "19912345678"}
    sc.add(persons=[fresh_person], **dispute("D-P1", ["P-NEW1", people[3]], day))
    dup = {**raw.loc[known].drop(["recorded_at"], errors="ignore").to_dict(), "person_id": "P-DUP1"}
    dup = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in dup.items()}
    sc.add(persons=[dup], **dispute("D-P2", ["P-DUP1", people[4]], day + pd.Timedelta(days=1)))
    sc.add(persons=[{**fresh_person, "person_id": "P-NEW2", "phone": None}],
           **dispute("D-P3", ["P-NEW2", people[5]], day + pd.Timedelta(days=2)))
    assert sc.rebuilds == 0  # all three linked in place
    idx = sc._state.idx
    key = idx.person_key
    assert key["P-DUP1"] == key[known] and key["P-NEW2"] == key["P-NEW1"] == "P-NEW1"
    frozen = idx.append_cache["linkage"].frozen
    grown = sc.history
    same = Dataset(**grown.tables())
    same.cache["person_key"] = relink(same.persons, None, frozen).key
    pts = open_points(grown, NIGHT)
    assert {"D-P1", "D-P2", "D-P3"} <= set(pts["dispute_id"])
    x = features_of(grown, pts)
    pd.testing.assert_frame_equal(x, features_of(same, pts))
    batch = small_model.score(same, NIGHT).set_index("dispute_id")
    for d in ("D-P1", "D-P2", "D-P3"):
        row, ps, meds = _request(grown, d)
        assert sc.score_dispute(row, ps, mediations=meds, as_of=NIGHT).probability == \
            pytest.approx(batch.loc[d, "probability"], abs=1e-12)
    # The known person's history counts for the dispute of their new record (the test bites).
    alone = Dataset(**grown.tables())
    alone.cache["person_key"] = same.cache["person_key"].where(same.cache["person_key"].index != "P-DUP1",
                                                                "P-DUP1 alone")
    y = features_of(alone, pts)
    assert not y.equals(x)
    # The re-fit batch (link_persons: m by EM, u from random pairs, term frequencies and the
    # threshold over all records) groups the records alike here.
    refit = link_persons(Dataset(**grown.tables()))
    pairs = pd.DataFrame({"a": key.reindex(refit.index).to_numpy(dtype=object), "b": refit.to_numpy(dtype=object)})
    assert len(pairs.drop_duplicates()) == pairs["a"].nunique() == pairs["b"].nunique()


def test_a_background_job_yields_to_calls_in_progress(monkeypatch):
    """The job thread's hook waits (GIL released) while a score_dispute call is in progress,
    wakes when the last call ends, never waits without calls, and waits no longer than its
    credit: a share of the time passed, so a stream of calls slows the job, never stops it."""
    import threading
    import time

    from escalation_risk import scoring

    monkeypatch.setattr(scoring, "YIELD_WAIT", 30.0)
    monkeypatch.setattr(scoring, "YIELD_BURST", 30.0)
    monkeypatch.setattr(scoring, "YIELD_SHARE", 0.5)
    calls = scoring._Calls()
    waiting = threading.Event()

    class Quiet(threading.Event):  # the calls' event, telling when the job starts waiting on it
        def wait(self, timeout=None) -> bool:
            waiting.set()
            return super().wait(timeout)

    calls.quiet = Quiet()
    calls.quiet.set()
    hook = calls.hook()
    hook(None, "call", None)
    assert not waiting.is_set()  # no call in progress: no wait
    done = threading.Event()

    def job():
        hook(None, "call", None)  # a call is in progress: waits for it
        done.set()

    with calls:
        with calls:  # two calls at once: the job waits for both
            thread = threading.Thread(target=job)
            thread.start()
            assert waiting.wait(60)  # the job is waiting (not merely not started)
            assert not done.is_set()
        assert not done.wait(0.2)  # one call still in progress: still waiting
    assert done.wait(10)  # the last call ended: the job goes on at once, not after YIELD_WAIT (30 s)
    thread.join()
    burst, share = 0.2, 0.5
    monkeypatch.setattr(scoring, "YIELD_BURST", burst)
    hook = calls.hook()
    with calls:  # calls without end: the job waits its credit, the burst and then half the time
        start = time.perf_counter()
        waited, steps = 0.0, 0
        while time.perf_counter() - start < 1.5:
            t = time.perf_counter()
            hook(None, "call", None)
            waited += time.perf_counter() - t
            sum(range(2000))  # the job's own work between its function calls
            steps += 1
        took = time.perf_counter() - start
    # Bounds from the time the loop really took (a loaded machine stretches it): the job waited
    # about its credit (the burst, then half the time), neither nothing nor the whole time.
    credit = burst + share * took
    assert steps > 1 and credit / 2 < waited < credit + 0.5 and waited < took, (waited, took)



def test_a_background_job_never_yields_holding_a_lock_an_add_needs(small_model, small_district, monkeypatch):
    """The job's hook waits at its function calls while a call is in progress, but never while
    the job holds a lock an add or a call needs: the scorer's (its last catch-up), the
    history's (joining its added rows) or the grown arrays' (capacity): else they would wait
    for its yield in turn. Here a call is in progress throughout and the calls' event records
    what the job holds at each wait instead of waiting."""
    import threading

    from escalation_risk import capacity, scoring
    from escalation_risk.features import delta

    monkeypatch.setattr(delta, "delta_limit", lambda n_base: 4)  # the second add starts a fold
    gate, armed = threading.Event(), threading.Event()
    real_fold = scoring._fold

    def held_fold(state):  # held until the third add arrived: it is re-applied in the catch-up
        assert gate.wait(60)
        armed.set()
        return real_fold(state)

    monkeypatch.setattr(scoring, "_fold", held_fold)
    sc = Scorer(small_model, small_district, pseudonym_key=KEY, fold="background")
    waits, held = [0], []
    snapshot: list = []

    class Quiet:
        def wait(self, timeout=None) -> bool:
            if armed.is_set():
                waits[0] += 1
                held.extend(name for name, lock in (("scorer", sc._lock), ("history", snapshot[0]._lock),
                                                    ("capacity", capacity._LOCK)) if lock.locked())
            return False

    sc._calls._n, sc._calls.quiet = 1, Quiet()  # a call in progress all along
    people = small_district.persons["person_id"].iloc[:2].tolist()
    for j in range(3):
        new = f"D-Q{j}"
        sc.add(incidents=[{"incident_id": new, "kind": "dispute", "category": "neighbor",
                           "occurred_at": "2025-06-20", "reported_at": "2025-06-20", "source": "grid_worker"}],
               incident_parties=[{"incident_id": new, "party_id": p, "party_type": "person", "role": r}
                                 for p, r in zip(people, ("complainant", "respondent"))])
        if j == 1:
            assert sc._job is not None and sc._job.kind == "fold"
            snapshot.append(sc._state.history)
            assert len(snapshot[0]._chunks["incidents"]) == 2  # the fold joins them holding its lock
    gate.set()
    assert sc.wait_for_fold(120) and sc.fold_error is None and sc.folds == 1
    assert waits[0] > 0  # the job did yield to the call in progress ...
    assert held == []  # ... never holding a lock
    assert len(sc.history.incidents) == len(small_district.incidents) + 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_rebuild_child_past_its_time_is_not_redone_on_the_serving_process(small_model, small_district,
                                                                             monkeypatch):
    """A rebuild's child stopped at its timeout: the rebuild is not done on the serving
    process (holding the GIL the child was there to spare) but reported, for the next add."""
    import time

    from escalation_risk import scoring
    from escalation_risk.features.delta import Stacked

    monkeypatch.setenv("ESCALATION_RISK_WORKERS", "2")
    monkeypatch.setattr(scoring, "REBUILD_TIMEOUT", 1.0)
    monkeypatch.setattr(scoring, "_in_background", lambda: time.sleep(600))  # the child never ends
    parent, built_here = os.getpid(), []
    real = scoring._rebuilt

    def rebuilt(*a, **k):
        built_here.append(os.getpid() == parent)
        return real(*a, **k)

    monkeypatch.setattr(scoring, "_rebuilt", rebuilt)
    with pytest.raises(scoring.RebuildTimeout):
        scoring._rebuilt_apart(Stacked(small_district), small_model.lexicon)
    assert built_here == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_rebuild_child_that_failed_is_redone_here_however_long_it_took(small_model, small_district,
                                                                          monkeypatch):
    """A timeout is what the wait that stopped the child says (forks.Forked.stopped), not a
    clock read afterwards: a child that failed near its deadline was not stopped, and its
    rebuild is done here. (The clock said "timed out" for a failure seen in the last poll.)"""
    import time
    import types

    from escalation_risk import scoring
    from escalation_risk.features.delta import Stacked

    monkeypatch.setenv("ESCALATION_RISK_WORKERS", "2")
    monkeypatch.setattr(scoring, "REBUILD_TIMEOUT", 5.0)

    def fail() -> None:
        raise RuntimeError("the child fails")

    monkeypatch.setattr(scoring, "_in_background", fail)
    # The serving process's clock runs an hour per read: any time-based verdict says "timed out".
    reads = iter(range(0, 10**6, 3600))
    monkeypatch.setattr(scoring, "time", types.SimpleNamespace(perf_counter=lambda: float(next(reads)),
                                                               monotonic=time.monotonic))
    parent, built_here = os.getpid(), []
    real = scoring._rebuilt

    def rebuilt(*a, **k):
        built_here.append(os.getpid() == parent)
        return real(*a, **k)

    monkeypatch.setattr(scoring, "_rebuilt", rebuilt)
    state = scoring._rebuilt_apart(Stacked(small_district), small_model.lexicon)
    assert built_here == [True] and len(state.idx.person_key) == len(small_district.persons)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_rebuild_job_spends_no_yield_waiting_for_its_child(small_model, small_district, monkeypatch):
    """While a rebuild's child works, the job thread only waits for it: its hook is off (the
    polling's calls would spend the credit the handover needs), and on again for the handover."""
    import sys

    from escalation_risk import scoring
    from escalation_risk.features.delta import Stacked

    monkeypatch.setenv("ESCALATION_RISK_WORKERS", "2")
    now, seen = ["start"], []

    class Quiet:  # a call in progress all along: the hook "waits" (records the phase) at each call
        def wait(self, timeout=None) -> bool:
            seen.append(now[0])
            return False

    calls = scoring._Calls()
    calls._n, calls.quiet = 1, Quiet()
    sys.setprofile(calls.hook())
    try:
        state = scoring._rebuilt_apart(Stacked(small_district), small_model.lexicon,
                                       phase=lambda p: now.__setitem__(0, p))
    finally:
        sys.setprofile(None)
    assert now[0] == "handover" and state.history.n("incidents") == len(small_district.incidents)
    assert "child" not in seen and "handover" in seen, set(seen)


def test_adds_with_the_text_model_on_keep_online_equal_to_batch(small_district):
    """A model reading the text model's score: adds bring descriptions and notes, which the
    index appends to its text columns (grown, the loaded texts left as they are); every
    dispute they touch then gets online the probability the batch gives on the grown history."""
    from escalation_risk import train
    from escalation_risk.features.text_column import TextColumn
    from escalation_risk.model.points import open_points

    ds = small_district
    model = train(ds, cutoff="2025-01-01", seed=0, config={"param_grid": [], "families_off": []})
    assert model.text_model is not None and "text_model_score" in model.feature_names
    sc = Scorer(model, ds, pseudonym_key=KEY, fold="never")
    rng = np.random.default_rng(11)
    people = ds.persons["person_id"].to_numpy(dtype=object)
    earlier = list(rng.choice(open_points(ds, NIGHT)["dispute_id"].to_numpy(dtype=object), 4, replace=False))
    texts = ["邻里纠纷，双方争吵", "对方扬言要报复，持刀威胁", "经调解双方和好", "多次冲突，情绪激动"]
    touched = []
    for j in range(8):
        day = pd.Timestamp("2025-06-01") + pd.Timedelta(days=int(rng.integers(0, 28)))
        who = rng.choice(people, 2, replace=False)
        new, old = f"D-T{j}", earlier[j % len(earlier)]
        sc.add(incidents=[{"incident_id": new, "kind": "dispute", "category": "neighbor", "occurred_at": day,
                           "reported_at": day, "source": "grid_worker", "description": texts[j % 4]},
                          {"incident_id": f"C-T{j}", "kind": "police_call", "category": "neighbor",
                           "occurred_at": day, "reported_at": day, "source": "police_110",
                           "related_incident_id": old, "description": texts[(j + 1) % 4]}],
               incident_parties=[{"incident_id": i, "party_id": p, "party_type": "person", "role": r}
                                 for i in (new, f"C-T{j}") for p, r in zip(who, ("complainant", "respondent"))],
               incident_notes=[{"note_id": f"N-T{j}", "incident_id": new if j % 2 else old,
                                "recorded_at": NIGHT - pd.Timedelta(days=1), "text": texts[(j + 2) % 4]}])
        touched.append(new)
    idx = sc._state.idx
    assert sc.rebuilds == 0 and isinstance(idx.inc_desc, TextColumn) and isinstance(idx.note_text, TextColumn)
    assert len(idx.inc_desc) == len(ds.incidents) + 16 and len(idx.note_text) == len(ds.incident_notes) + 8
    grown = sc.history
    fresh = Dataset(**grown.tables())
    batch = model.score(fresh, NIGHT).set_index("dispute_id")
    for d in touched + earlier:
        row, ps, meds = _request(grown, d)
        notes = grown.incident_notes[grown.incident_notes["incident_id"] == d].to_dict("records")
        got = sc.score_dispute(row, ps, mediations=meds, notes=notes, as_of=NIGHT).probability
        assert got == pytest.approx(batch.loc[d, "probability"], abs=1e-12), d

_GOOD_PERSON = {"person_id": "P-OK", "birth_year": 1988, "gender": "male", "hukou": "migrant",
                "employment": "unemployed", "name": "司徒明", "id_number": "440305198807151231",
                "phone": "19912345678"}


@pytest.fixture(scope="module")
def keyed_scorer(small_model, small_district):
    return Scorer(small_model, small_district, pseudonym_key=KEY, fold="never")


@pytest.mark.parametrize("bad", [
    {"gender": "M"},  # a code (the record engine)
    {"birth_year": 2999},  # a plausibility rule (the record engine)
    {"person_id": None},  # a required id
    {"id_number": "440305198807151239"},  # a wrong check digit: the record engine hands over to the frame engine
    {"phone": "1380000000", "hukou": "abroad"},  # two problems in one row
])
def test_an_added_person_row_is_rejected_as_a_file_rejects_it(small_district, keyed_scorer, bad):
    """A service's new person row is validated record by record (not through the frame
    engine's fixed cost); the add is still refused with the problems a file of people gets
    (the frame engine, over SMALL rows): same table, column, row, reason and shown value,
    never the personal value itself, and nothing is added."""
    from escalation_risk.dataset import SMALL
    from escalation_risk.idnumbers import gb11643_check_digit

    good = dict(_GOOD_PERSON, id_number=_GOOD_PERSON["id_number"][:17] + gb11643_check_digit(
        _GOOD_PERSON["id_number"][:17]))
    row = {**good, "person_id": "P-BAD", **bad}
    n = len(keyed_scorer.history.persons)
    with pytest.raises(DataValidationError) as added:
        keyed_scorer.add(persons=[row])
    assert len(keyed_scorer.history.persons) == n
    file = pd.DataFrame([row] + [{**good, "person_id": f"P-OK{i}", "phone": f"199{i:08d}"} for i in range(SMALL + 1)])
    with pytest.raises(DataValidationError) as loaded:
        small_district.append(persons=file, pseudonym_key=KEY)
    theirs = loaded.value.problems
    pd.testing.assert_frame_equal(added.value.problems.reset_index(drop=True),
                                  theirs[theirs["row"] == 0].reset_index(drop=True), check_dtype=False)
    assert len(added.value.problems) == len(bad)
    for col in ("id_number", "phone"):
        if col in bad:
            assert bad[col] not in str(added.value)  # identifiers never shown


def _dispute_rows(ds, table: str, i: int) -> dict:
    """A good row of ``table`` naming the history's first place, dispute and person."""
    inc, person = ds.incidents["incident_id"].iloc[0], ds.persons["person_id"].iloc[0]
    return {"incidents": {"incident_id": f"F-{i}", "kind": "dispute", "category": "neighbor",
                          "occurred_at": "2025-06-01", "reported_at": "2025-06-02",
                          "place_id": ds.places["place_id"].iloc[0], "source": "walk_in"},
            "incident_parties": {"incident_id": inc, "party_id": person, "party_type": "person", "role": "other"},
            "mediations": {"mediation_id": f"FM-{i}", "incident_id": inc, "held_at": "2025-06-01",
                           "mediator_type": "court", "outcome": "failed"},
            "incident_notes": {"note_id": f"FN-{i}", "incident_id": inc, "recorded_at": "2025-06-03",
                               "text": "双方再次争吵"}}[table]


@pytest.mark.parametrize("table,bad", [
    ("incidents", {"category": "assault"}),  # a row rule
    ("incidents", {"reported_at": "2025-05-01"}),  # reported before it occurred
    ("incidents", {"place_id": "PL-NOWHERE", "source": "fax"}),  # a reference and a code
    ("incidents", {"incident_id": "HIST"}),  # an id the history holds
    ("incident_parties", {"party_id": "P-NOWHERE"}),
    ("incident_parties", {"added_at": "2000-01-01"}),  # before its incident's report
    ("mediations", {"outcome_at": "2025-05-01"}),  # before it was held
    ("mediations", {"incident_id": "I-NOWHERE"}),
    ("incident_notes", {"recorded_at": "not a date"}),
])
def test_an_added_dispute_row_is_refused_as_a_file_refuses_it(small_district, keyed_scorer, table, bad):
    """The rows of an add are validated record by record against the few history rows they
    name (Dataset.new_rows on the add's context); a bad one is refused with the problems the
    same row gets in a file appended to the whole history (the frame engine, over SMALL rows),
    and nothing is added."""
    from escalation_risk.dataset import SMALL

    if bad.get("incident_id") == "HIST":
        bad = {"incident_id": small_district.incidents["incident_id"].iloc[3]}
    row = {**_dispute_rows(small_district, table, -1), **bad}
    n = len(getattr(keyed_scorer.history, table))
    with pytest.raises(DataValidationError) as added:
        keyed_scorer.add(**{table: [row]})
    assert len(getattr(keyed_scorer.history, table)) == n
    file = pd.DataFrame([row] + [_dispute_rows(small_district, table, i) for i in range(SMALL + 1)])
    with pytest.raises(DataValidationError) as loaded:
        small_district.append(**{table: file})
    theirs = loaded.value.problems
    assert len(theirs) and (theirs["row"] == 0).all()  # the good rows are good
    pd.testing.assert_frame_equal(added.value.problems.reset_index(drop=True), theirs.reset_index(drop=True),
                                  check_dtype=False)


def test_a_built_or_rebuilt_index_has_its_id_hash_tables_ready(small_model, small_district):
    """pandas hashes an Index on its first look-up: for the published index of a rebuild
    that is done in the rebuild (index_fold.hash_ids), never by the first reader."""
    from escalation_risk import scoring
    from escalation_risk.features.id_index import IdIndex

    def ids(idx):
        out = {k: (v.base if isinstance(v, IdIndex) else v) for k, v in vars(idx).items()}
        return {k: v for k, v in out.items() if isinstance(v, pd.Index) and len(v)}

    fresh = history_index(small_district.cut(NIGHT), small_model.lexicon)
    assert {"incidents", "_pid_index", "med_ids"} <= set(ids(fresh))
    assert not any(ids(fresh)[k]._engine.is_mapping_populated for k in ("incidents", "med_ids"))  # it bites
    sc = Scorer(small_model, small_district, pseudonym_key=KEY, fold="never")
    state = scoring._rebuilt(sc._state.history, small_model.lexicon)
    apart = scoring._rebuilt_apart(sc._state.history, small_model.lexicon)  # handed over by a child
    for idx in (sc._state.idx, state.idx, apart.idx):
        assert all(ix._engine.is_mapping_populated for ix in ids(idx).values())
    assert apart.idx.lexicon == state.idx.lexicon and set(vars(apart.idx)) == set(vars(state.idx))
    # Given the index it replaces, the child's id indexes that extend it are adopted as it (hashed
    # already), not hashed again; the others (none here, nothing was added) come as built.
    before = sc._state.idx
    reused = scoring._rebuilt_apart(sc._state.history, small_model.lexicon, before).idx
    assert reused.incidents.base is before.incidents and reused._pid_index.base is before._pid_index
    for name, ix in ids(state.idx).items():
        assert IdIndex.of(getattr(reused, name)).to_numpy().tolist() == ix.to_numpy().tolist(), name


def test_a_catch_up_links_each_add_of_persons_as_add_did(small_model, small_district, monkeypatch):
    """A catch-up (the adds made while a fold or rebuild ran, re-applied to its result)
    gives every person the key add() gave: an add bringing persons is linked against the
    people known before it, the persons of the adds just before it included."""
    from escalation_risk import scoring
    from escalation_risk.idnumbers import gb11643_check_digit

    ds = small_district
    sc = Scorer(small_model, ds, pseudonym_key=KEY, fold="never")
    start, seen = sc._state, []
    real = scoring._appended

    def recorded(state, added, lexicon, rebuild=True):
        seen.append(added)
        return real(state, added, lexicon, rebuild)

    monkeypatch.setattr(scoring, "_appended", recorded)
    people = ds.persons["person_id"].tolist()
    stem = "44030519880715123"
    first = {"person_id": "P-C1", "birth_year": 1988, "gender": "male", "hukou": "migrant",
             "employment": "unemployed", "name": "司徒明", "id_number": stem + gb11643_check_digit(stem),
             "phone": "19912345678"}
    day = pd.Timestamp("2025-06-20")
    for j, person in enumerate([first, {**first, "person_id": "P-C2", "phone": None},
                                {**first, "person_id": "P-C3", "id_number": None}]):
        new = f"D-C{j}"
        sc.add(persons=[person],
               incidents=[{"incident_id": new, "kind": "dispute", "category": "neighbor", "occurred_at": day,
                           "reported_at": day, "source": "grid_worker"}],
               incident_parties=[{"incident_id": new, "party_id": p, "party_type": "person", "role": r}
                                 for p, r in zip([person["person_id"], people[j]], ("complainant", "respondent"))])
        sc.add(incident_notes=[{"note_id": f"N-C{j}", "incident_id": new, "recorded_at": day, "text": "回访"}])
    assert len(seen) == 6 and sc.rebuilds == 0
    monkeypatch.setattr(scoring, "_appended", real)
    # A catch-up applies the adds to a freshly built index (a rebuild's or a fold's result).
    fresh = Scorer(small_model, Dataset(**start.history.dataset().tables()), pseudonym_key=KEY, fold="never")._state
    caught_up = scoring._reapply(fresh, seen, small_model.lexicon)
    one_by_one = sc._state.idx.person_key
    pd.testing.assert_series_equal(caught_up.idx.person_key.sort_index(), one_by_one.sort_index())
    assert caught_up.history.dataset().persons["person_id"].tolist() == sc.history.persons["person_id"].tolist()


def test_a_fold_merges_the_people_linked_since_and_later_adds_link_as_without_it(small_model, small_district,
                                                                                  monkeypatch):
    """A fold sorts the person records linked since the linkage state was built into it (no
    records left pending, whose scans every add would pay until a rebuild); the people added
    after link as they would have without the fold, and as the full re-link of every record
    with the frozen parameters does."""
    from escalation_risk import scoring
    from escalation_risk.features import index_fold
    from escalation_risk.features.grown_persons import LINKAGE
    from escalation_risk.features.index_fold import needs_fold
    from escalation_risk.idnumbers import gb11643_check_digit
    from escalation_risk.linking.incremental import relink

    sc, fs = (Scorer(small_model, small_district, pseudonym_key=KEY, fold="never") for _ in range(2))
    stem = "44030519880715123"
    one = {"person_id": "P-F1", "birth_year": 1988, "gender": "male", "hukou": "migrant",
           "employment": "unemployed", "name": "司徒明", "id_number": stem + gb11643_check_digit(stem),
           "phone": "19912345678"}
    other = {**one, "person_id": "P-F9", "name": "上官云", "birth_year": 1961, "gender": "female",
             "id_number": None, "phone": "18800001111"}
    for person in (one, {**one, "person_id": "P-F2", "phone": None}, other):
        sc.add(persons=[person])
        fs.add(persons=[person])
    start = sc._state
    pending = start.idx.append_cache[LINKAGE]
    assert pending.delta.n == 3, "records pending in the linkage state (the test bites)"
    assert not needs_fold(start.idx)
    with monkeypatch.context() as m:  # a delta past its limit asks for a fold, which empties it
        m.setattr(index_fold, "delta_limit", lambda n: 2)
        assert needs_fold(start.idx) and not needs_fold(scoring._fold(start).idx)
    fs._state = scoring._fold(fs._state)  # what an inline fold does
    fs._accepted = fs._state.history
    merged = fs._state.idx.append_cache[LINKAGE]
    assert merged.delta.n == 0 and merged.base.n == pending.n
    assert (merged.base.pid == np.r_[pending.base.pid, pending.delta.pid]).all()
    assert merged.frozen.weights is pending.frozen.weights and merged.frozen.n_base == pending.frozen.n_base
    later = [{**one, "person_id": "P-F3", "id_number": None},
             {**other, "person_id": "P-F10", "phone": None, "name": "上官芸"},
             {**one, "person_id": "P-F4", "name": "赵大海", "birth_year": 1970, "id_number": None,
              "phone": "13700002222"}]
    for person in later:
        sc.add(persons=[person])
        fs.add(persons=[person])
        pd.testing.assert_series_equal(sc._state.idx.person_key, fs._state.idx.person_key)
    assert sc.rebuilds == fs.rebuilds == 0 and fs._state.idx.append_cache[LINKAGE].delta.n == len(later)
    everyone = fs._state.history.dataset().persons
    key = fs._state.idx.person_key
    ref = relink(everyone, start.idx.person_key, pending.frozen).key
    pd.testing.assert_series_equal(key.sort_index(), ref.reindex(key.index).sort_index(), check_names=False)
    assert key["P-F3"] == key["P-F1"] == key["P-F2"] != key["P-F4"]


def test_a_linkage_state_for_a_key_made_elsewhere_is_logged_without_personal_values(small_model, small_district,
                                                                                     caplog):
    """An index whose person key came without its linkage re-links with fresh parameters
    (which may split the key's groups, each add touching one then re-builds): said in a log
    line of counts, never an id or a name."""
    import copy
    import logging

    from escalation_risk.features.grown_persons import LINKAGE, link_state

    sc = Scorer(small_model, small_district, pseudonym_key=KEY, fold="never")
    idx = copy.copy(sc._state.idx)
    idx.person_key = idx.person_key.copy()  # not the key the cached linkage made
    idx.append_cache = {k: v for k, v in idx.append_cache.items() if k != LINKAGE}
    with caplog.at_level(logging.WARNING, logger="escalation_risk.features.grown_persons"):
        state = link_state(idx, sc._state.history)
    assert state.n == len(idx.person_key)
    msgs = [r.getMessage() for r in caplog.records if "linkage state" in r.getMessage()]
    assert len(msgs) == 1 and "another key" in msgs[0] and f"{len(idx.person_key)} records" in msgs[0], msgs
    groups = idx.person_key.nunique()
    assert f"of the key's {groups} groups" in msgs[0]
    persons = small_district.persons
    for col in ("person_id", "name", "id_number", "phone"):
        values = set(persons[col].dropna().astype(str))
        assert not any(v in msgs[0] for v in values if len(v) > 3), col
    caplog.clear()
    link_state(idx, sc._state.history)  # kept: logged once
    assert not [r for r in caplog.records if "linkage state" in r.getMessage()]


def test_adds_onto_an_index_handed_over_by_a_child_equal_adds_onto_a_built_one(small_model, small_district):
    """A rebuilt index comes back from its forked child mapped from a file (numeric arrays
    copy-on-write, some read-only as built). Person adds onto it (a new person, a known
    person's record under a new id, a second record of the new person) give the keys and
    answers of the same adds onto the index built here, and leave the handed-over index's
    arrays as they were (a reader may still hold it)."""
    from escalation_risk import scoring
    from escalation_risk.idnumbers import gb11643_check_digit
    from escalation_risk.synth import generate_tables

    ds = small_district
    raw = generate_tables(4000, seed=2)[0]["persons"].set_index("person_id")
    busiest = ds.incident_parties.loc[ds.incident_parties["party_type"] == "person", "party_id"].value_counts()
    known = next(p for p in busiest.index if isinstance(raw.loc[p, "id_number"], str))
    people = ds.persons["person_id"].tolist()
    stem = "44030519880715123"
    day = pd.Timestamp("2025-06-20")
    fresh = {"person_id": "P-NEW1", "birth_year": 1988, "gender": None, "hukou": "migrant", "employment": None,
             "name": "司徒明", "id_number": stem + gb11643_check_digit(stem), "phone": "19912345678"}
    dup = {**raw.loc[known].drop(["recorded_at"], errors="ignore").to_dict(), "person_id": "A-DUP1"}
    dup = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in dup.items()}
    # The known person's record first: it adds no person, so nothing grows before it is written.
    adds = [[dup], [fresh], [{**fresh, "person_id": "P-NEW2", "phone": None, "gender": "female"}]]

    def run(handed: bool):
        sc = Scorer(small_model, ds, pseudonym_key=KEY, fold="never")
        if handed:
            sc._state = scoring._rebuilt_apart(sc._state.history, small_model.lexicon)
            for c in ("birth_year", "gender"):  # as pandas hands out arrays (copy-on-write), or as mapped
                getattr(sc._state.idx, c).flags.writeable = False
        before = {c: getattr(sc._state.idx, c).copy() for c in ("birth_year", "gender", "hukou", "employment")}
        start = sc._state.idx
        answers = []
        for j, persons in enumerate(adds):
            new = f"D-H{j}"
            sc.add(persons=persons, incidents=[{"incident_id": new, "kind": "dispute", "category": "neighbor",
                                                "occurred_at": day, "reported_at": day, "source": "grid_worker"}],
                   incident_parties=[{"incident_id": new, "party_id": p, "party_type": "person", "role": r}
                                     for p, r in ((persons[0]["person_id"], "complainant"), (people[j], "respondent"))])
            answers.append(sc.score_dispute(*_request(sc.history, new)[:2], as_of=NIGHT).probability)
        assert sc.rebuilds == 0
        for c, arr in before.items():  # nothing written where the index before the adds can see
            pd.testing.assert_series_equal(pd.Series(getattr(start, c)), pd.Series(arr))
        return sc._state.idx, answers

    built, want = run(False)
    handed, got = run(True)
    assert got == pytest.approx(want, abs=1e-12)
    pd.testing.assert_series_equal(handed.person_key.sort_index(), built.person_key.sort_index())
    for c in ("birth_year", "gender", "hukou", "employment"):
        pd.testing.assert_series_equal(pd.Series(getattr(handed, c)), pd.Series(getattr(built, c)))
    assert handed.person_key["A-DUP1"] == handed.person_key[known]


def test_first_present_attributes_equal_the_pandas_group_by():
    """A new record's person gets, per attribute, the first non-null value across its records
    in person_id order: grown_persons._first_present (numpy, a few rows) equals the pandas
    form it replaced on random records (missing values, shared persons, unsorted ids), in
    nullable, float, categorical, object and string columns, missing as None, pd.NA or NaN;
    a person with every value missing gets NaN (never pd.NA or None) in each."""
    from escalation_risk.features.grown_persons import PERSON_COLUMNS, _first_present

    def column(values: list, kind: str, missing) -> pd.Series:
        """``values`` (None: missing, written as ``missing``) in a column of ``kind``."""
        if kind == "Int64":
            return pd.Series(pd.array(values, dtype="Int64"))
        if kind == "float64":
            return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        if kind == "category":
            return pd.Series(pd.Categorical(values, categories=list("abc")))
        if kind == "str":  # strings, NaN or pd.NA for missing by the dtype
            return pd.Series(values, dtype="str" if missing is np.nan else pd.StringDtype("python"))
        return pd.Series([missing if v is None else v for v in values], dtype=object)

    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(1, 9))
        ids = [f"P{v}" for v in rng.choice(40, n + 2, replace=False)]
        person = np.concatenate([rng.integers(0, 4, n), [9, 9]])  # person 9: every value missing
        missing = [None, pd.NA, np.nan][trial % 3]  # each kind of column with each missing value
        kinds = {"birth_year": ("Int64", "float64", "object")[trial // 3 % 3],
                 **{c: ("category", "object", "str")[(trial // 3 + i) % 3]
                    for i, c in enumerate(("gender", "hukou", "employment"))}}
        data = {"person_id": pd.Series(ids, dtype="str")}
        for c, kind in kinds.items():
            vals = [None if i >= n or rng.random() < 0.4 else
                    int(rng.integers(1940, 2010)) if c == "birth_year" else str(rng.choice(list("abc")))
                    for i in range(n + 2)]
            data[c] = column(vals, kind, missing)
        rows = pd.DataFrame(data)
        pos, got = _first_present(rows, person)
        want = rows.assign(_k=person).sort_values("person_id").groupby("_k")[[c for c, _ in PERSON_COLUMNS]].first()
        assert pos.tolist() == want.index.tolist() and pos[-1] == 9
        for col, dtype in PERSON_COLUMNS:
            w = want[col].astype(dtype).to_numpy()
            g = got[col]
            assert all((pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and a == b)
                       for a, b in zip(g, w)), (trial, col, kinds[col])
            assert pd.isna(g[-1]) and g[-1] is not pd.NA, (trial, col)  # the all-missing person: NaN
            assert g.dtype == np.dtype(dtype) and not any(v is pd.NA or v is None for v in g), (trial, col)
