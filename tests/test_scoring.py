"""score_dispute(): the batch number, from plain dicts, safely under threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from escalation_risk import DataValidationError, Scorer
from escalation_risk.response import PLANS

NIGHT = pd.Timestamp("2025-06-30")


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
        assert a.plan in PLANS and a.model_version == scorer.model.version


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
    row, parties, _ = _request(small_district, small_district.incidents.query("kind == 'dispute'").iloc[0]["incident_id"])
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
    assert a.to_dict()["as_of"] == "2025-06-30T00:00:00"


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
