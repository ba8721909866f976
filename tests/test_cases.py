"""The typical-case library: neighbours in the model's terms, known at as_of only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

import escalation_risk as er
from escalation_risk.cases import CASE_COLUMNS, build_case_index, case_index, typical_cases, typical_report
from escalation_risk.clock import to_moment
from escalation_risk.labels import data_end


def _disputes(ds, start, end):
    inc = ds.incidents
    d = inc[(inc["kind"] == "dispute") & (inc["reported_at"] >= start) & (inc["reported_at"] < end)]
    return d.sort_values("reported_at", kind="stable")


@pytest.fixture(scope="module")
def queries(small_district):
    """80 disputes of 2024, each asked about ten days after its report."""
    d = _disputes(small_district, pd.Timestamp("2024-01-01"), pd.Timestamp("2025-01-01"))
    pick = d.sample(80, random_state=0)
    return list(zip(pick["incident_id"], pick["reported_at"] + pd.Timedelta(days=10)))


def test_answer_shape_and_order(small_district, small_model, queries):
    did, as_of = queries[0]
    out = er.similar_cases(small_model, small_district, did, as_of, k=7)
    assert list(out.columns) == CASE_COLUMNS
    assert len(out) == 7
    assert out["rank"].tolist() == list(range(1, 8))
    assert (np.diff(out["distance"].to_numpy()) >= -1e-6).all()  # nearest first within the category
    assert did not in set(out["dispute_id"])
    assert out["same_category"].all()
    q = out.attrs["query"]
    assert q["dispute_id"] == did and q["model_version"] == small_model.version
    assert set(out["plan"]) <= set(er.response.PLANS)


def test_neighbours_share_category_and_reasons_more_than_random(small_district, small_model, queries):
    """The lift: neighbours share the query's leading reasons far more often than random
    past disputes, even random ones of the same category."""
    idx = case_index(small_model, small_district)
    rng = np.random.default_rng(0)
    near_cat, near_reason, rand_cat, rand_reason, rand_same_cat_reason = [], [], [], [], []
    for did, as_of in queries:
        out = er.similar_cases(small_model, small_district, did, as_of, k=10, index=idx)
        qr = set(out.attrs["query"]["reason_features"])
        cat = out.attrs["query"]["category"]
        near_cat += list(out["category"] == cat)
        near_reason += [bool(set(r) & qr) for r in out["reason_features"]]
        past = np.flatnonzero((idx.reported_at <= as_of.to_datetime64()) & (idx.dispute_id != did))
        pick = rng.choice(past, size=10, replace=False)
        rand_cat += list(idx.category[pick] == cat)
        rand_reason += [bool(set(idx.reason_features[i]) & qr) for i in pick]
        same = past[idx.category[past] == cat]
        pick = rng.choice(same, size=min(10, len(same)), replace=False)
        rand_same_cat_reason += [bool(set(idx.reason_features[i]) & qr) for i in pick]
    lift = np.mean(near_reason) / np.mean(rand_reason)
    lift_cat = np.mean(near_reason) / np.mean(rand_same_cat_reason)
    print(f"shared category: neighbours {np.mean(near_cat):.2f}, random {np.mean(rand_cat):.2f}; "
          f"a shared leading reason: neighbours {np.mean(near_reason):.2f}, random {np.mean(rand_reason):.2f} "
          f"(lift {lift:.2f}), random of the same category {np.mean(rand_same_cat_reason):.2f} "
          f"(lift {lift_cat:.2f})")
    assert np.mean(near_cat) > np.mean(rand_cat) + 0.5
    assert lift > 1.3
    assert lift_cat > 1.2


def test_nothing_after_as_of(small_district, small_model, queries):
    """The answer on the full export equals the answer on the export as it stood at as_of."""
    for did, as_of in queries[:6]:
        full = er.similar_cases(small_model, small_district, did, as_of, k=10)
        cut = small_district.cut(as_of)
        then = er.similar_cases(small_model, cut, did, as_of, k=10)
        pd.testing.assert_frame_equal(full.drop(columns="distance"), then.drop(columns="distance"))
        np.testing.assert_allclose(full["distance"], then["distance"], rtol=1e-5, atol=1e-6)
        assert (full["reported_at"] <= as_of).all()
        assert all(pd.Timestamp(m["held_at"]) <= as_of for ms in full["mediations"] for m in ms)
        closed = full["closed_at"].dropna()
        assert (pd.to_datetime(closed) <= as_of).all()


def test_escalated_agrees_with_the_labels(small_district, small_model):
    """Once a case's horizon is over, its 'escalated' is the default label."""
    idx = case_index(small_model, small_district)
    end = data_end(small_district)
    rows = np.arange(len(idx))
    esc = idx.escalated(rows, end)
    y = er.make_labels(small_district, pd.DataFrame({"dispute_id": idx.dispute_id, "as_of": idx.reported_at}))
    lab = ~y.isna().to_numpy()
    assert lab.sum() > 1000 and np.nansum(y) > 50
    assert [e for e, ok in zip(esc, lab) if ok] == [bool(v) for v in y[lab]]
    # Early in a case's horizon nothing is known yet, later its crime is.
    r = int(np.flatnonzero(np.array([e is True for e in esc]))[0])
    assert idx.escalated(np.array([r]), pd.Timestamp(idx.reported_at[r]))[0] is None
    assert idx.escalated(np.array([r]), pd.Timestamp(idx.crime_known_at[r]))[0] is True


def test_same_category_first_then_others(small_district, small_model):
    """A category with few earlier disputes is filled up with the nearest of the others."""
    idx = case_index(small_model, small_district)
    cat = min(idx.blocks, key=lambda c: idx.blocks[c][1] - idx.blocks[c][0])
    lo, _ = idx.blocks[cat]
    did, rep = idx.dispute_id[lo + 3], pd.Timestamp(idx.reported_at[lo + 3])
    out = er.similar_cases(small_model, small_district, did, rep, k=10, index=idx)
    assert out["same_category"].tolist() == [True] * 3 + [False] * 7
    assert (out["reported_at"] <= rep).all()


def test_nightly_index_reuses_last_night(small_district, small_model):
    full = build_case_index(small_model, small_district, "2025-03-01")
    prev = build_case_index(small_model, small_district, "2025-01-01")
    inc = build_case_index(small_model, small_district, "2025-03-01", previous=prev)
    assert len(prev) < len(inc) == len(full)
    np.testing.assert_array_equal(inc.dispute_id, full.dispute_id)
    np.testing.assert_allclose(inc.contributions, full.contributions, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(inc.probability, full.probability)
    assert inc.reason_features == full.reason_features and inc.reasons_zh == full.reasons_zh
    assert inc.plan.tolist() == full.plan.tolist() and inc.level.tolist() == full.level.tolist()
    assert inc.blocks == full.blocks


def test_scorer_answers_for_a_dispute_given_as_dicts(small_district, small_model, queries):
    did, as_of = queries[1]
    ds = small_district
    row = ds.incidents.set_index("incident_id").loc[did]
    dispute = {c: (None if not isinstance(v, str) and pd.isna(v) else v) for c, v in row.items()}
    dispute.update(incident_id=did, closed_at=None, status="open", related_incident_id=None)
    parties = ds.incident_parties[ds.incident_parties["incident_id"] == did].to_dict("records")
    meds = ds.mediations[(ds.mediations["incident_id"] == did) & (ds.mediations["held_at"] <= as_of)]
    got = er.Scorer(small_model, ds).similar_cases(dispute, parties, mediations=meds.to_dict("records"),
                                                    as_of=as_of, k=10)
    batch = er.similar_cases(small_model, ds, did, as_of, k=10)
    assert list(got.columns) == CASE_COLUMNS and len(got) == 10
    # The same dispute through the online path finds (nearly) the same cases.
    assert len(set(got["dispute_id"]) & set(batch["dispute_id"])) >= 8
    assert (got["reported_at"] <= as_of).all()


def test_typical_library(small_district, small_model):
    idx = case_index(small_model, small_district)
    lib = typical_cases(idx, "2023-01-01", "2024-07-01", per_category=2)
    assert set(lib["kind"]) == {"escalated", "defused"}
    # "2024-07-01" as an end is that day's end (clock.to_moment): a dispute reported during it belongs
    assert lib["reported_at"].between(pd.Timestamp("2023-01-01"), pd.Timestamp("2024-07-02"), inclusive="left").all(), \
        lib["reported_at"].max()
    assert (lib.loc[lib["kind"] == "escalated", "escalated"] == True).all()  # noqa: E712
    dfd = lib[lib["kind"] == "defused"]
    assert (dfd["escalated"] == False).all() and dfd["level"].isin(["red", "orange", "yellow"]).all()  # noqa: E712
    assert lib.groupby(["category", "kind"]).size().max() <= 2
    text = typical_report(lib)
    for cat in lib["category"].unique():
        assert f"## {cat}" in text
    assert "escalated:" in text and "defused:" in text


def test_bad_requests(small_district, small_model):
    with pytest.raises(ValueError, match="k must be at least 1"):
        er.similar_cases(small_model, small_district, "x", "2024-01-01", k=0)
    with pytest.raises(ValueError, match="not in the data"):
        er.similar_cases(small_model, small_district, "NO-SUCH-DISPUTE", "2024-01-01")
    d = _disputes(small_district, pd.Timestamp("2024-06-01"), pd.Timestamp("2024-07-01")).iloc[0]
    with pytest.raises(ValueError, match="before the dispute was reported"):
        er.similar_cases(small_model, small_district, d["incident_id"], d["reported_at"] - pd.Timedelta(days=1))


def test_cli_cases(tmp_path, small_district, small_model):
    from click.testing import CliRunner

    from escalation_risk.cli import main
    data, model_dir = tmp_path / "data", tmp_path / "model"
    small_district.write(data)
    small_model.save(model_dir)
    d = _disputes(small_district, pd.Timestamp("2024-06-01"), pd.Timestamp("2024-07-01")).iloc[0]
    as_of = (d["reported_at"] + pd.Timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    env = {"ESCALATION_RISK_PSEUDONYM_KEY": KEY}
    runner = CliRunner()
    r = runner.invoke(main, ["cases", str(data), "--dispute", d["incident_id"], "--as-of", as_of,
                             "--model", str(model_dir), "--k", "4", "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert len(got["cases"]) == 4 and got["query"]["dispute_id"] == d["incident_id"]
    assert all(c["reported_at"] <= pd.Timestamp(as_of).isoformat() for c in got["cases"])
    r = runner.invoke(main, ["cases", str(data), "--dispute", d["incident_id"], "--as-of", as_of,
                             "--model", str(model_dir), "--format", "table"], env=env)
    assert r.exit_code == 0 and d["incident_id"] in r.output
    # Reasons read as sentences, never as raw feature names.
    q = got["query"]
    assert q["reasons"] and all(sentence in r.output for sentence in q["reasons"])
    assert not any(name in r.output for name in q["reason_features"] + [f for c in got["cases"]
                                                                     for f in c["reason_features"]])
    out = tmp_path / "lib"
    r = runner.invoke(main, ["cases", str(data), "--typical", "--start", "2023-01-01", "--end", "2024-07-01",
                             "--model", str(model_dir), "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    lib = pd.read_csv(out / "typical-cases.csv")
    assert {"kind", "category", "dispute_id", "plan", "escalated"} <= set(lib.columns) and len(lib)
    report = (out / "typical-cases.md").read_text()
    assert report.startswith("# Typical cases") and "Leading reasons of the typical escalations" in report
    assert not any(f in report for fs in lib["reason_features"] for f in json.loads(fs))
    r = runner.invoke(main, ["cases", str(data), "--model", str(model_dir)], env=env)
    assert r.exit_code == 2 and "--dispute" in r.output
    # The nightly index: built once, then read by the queries.
    idx_dir = tmp_path / "index"
    r = runner.invoke(main, ["cases", str(data), "--build-index", str(idx_dir), "--as-of", "2025-06-30",
                             "--model", str(model_dir)], env=env)
    assert r.exit_code == 0 and (idx_dir / "manifest.json").is_file(), r.output
    r = runner.invoke(main, ["cases", str(data), "--dispute", d["incident_id"], "--as-of", as_of, "--index",
                             str(idx_dir), "--model", str(model_dir), "--k", "4", "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    from_index = json.loads(r.output)
    assert from_index["cases"] == got["cases"] and from_index["query"]["index_night"] == "2025-06-30T23:59:59.999999"


def test_index_saved_and_loaded_gives_the_same_answers(tmp_path, small_district, small_model, queries):
    from escalation_risk.cases import CaseIndexLoadError, load_case_index
    idx = case_index(small_model, small_district)
    idx.save(tmp_path / "idx")
    back = load_case_index(tmp_path / "idx", small_model)
    assert len(back) == len(idx) and back.blocks == idx.blocks
    for did, as_of in queries[:5]:
        a = er.similar_cases(small_model, small_district, did, as_of, index=idx)
        b = er.similar_cases(small_model, small_district, did, as_of, index=back)
        pd.testing.assert_frame_equal(a, b)
    with open(tmp_path / "idx" / "contributions.npy", "r+b") as f:  # a changed file is refused
        f.seek(-4, 2)
        f.write(b"\x00\x00\x80\x7f")
    with pytest.raises(CaseIndexLoadError, match="contributions.npy: missing or changed"):
        load_case_index(tmp_path / "idx")


@pytest.mark.parametrize("as_of", ["2024-06-30", "2025-03-15"])
def test_escalated_on_full_export_equals_cut_export(small_district, small_model, as_of):
    """The one escalation rule says when each escalation became known: the case index of the
    night as_of gives the same escalated flags on the full export (late facts included) as
    on the export cut at as_of (a date: the end of that day)."""
    t = to_moment(as_of)
    assert small_district.incident_parties["added_at"].notna().any()  # late facts present
    full = build_case_index(small_model, small_district, as_of)
    cut = build_case_index(small_model, small_district.cut(t), as_of)
    assert full.night == cut.night == t
    np.testing.assert_array_equal(full.dispute_id, cut.dispute_id)
    rows = np.arange(len(full))
    got, want = full.escalated(rows, t), cut.escalated(rows, t)
    assert sum(e is True for e in want) > 5 and sum(e is False for e in want) > 100
    assert got == want
    # A dispute reported on the night's day is in the index.
    day = full.reported_at[(full.reported_at >= pd.Timestamp(as_of).to_datetime64())]
    inc = small_district.incidents
    on_day = inc[(inc["kind"] == "dispute") & (inc["reported_at"].dt.normalize() == pd.Timestamp(as_of))]
    assert len(day) == len(on_day)
