"""Training, temporal validation, calibration, reasons, artifacts and the quality bar.

One generated district and one model are built per module (module-scoped
fixtures); the whole file stays around a minute on two cores.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY

from escalation_risk import Dataset, artifacts
from escalation_risk.artifacts import ModelLoadError
from escalation_risk.cli import main as cli
from escalation_risk.features import FEATURE_NAMES, REGISTRY, build_features
from escalation_risk.model import (
    RiskModel,
    apply_calibrator,
    backtest,
    evaluate,
    example_points,
    fit_calibrator,
    load_model,
    report_points,
    train,
)
from escalation_risk.model.training import FAMILIES_OFF, _folds
from escalation_risk.model_card import write_model_card
from escalation_risk.synth import generate_district

# Under `make test`'s xdist the module runs in one worker, so the 20,000-person district and
# its model (below) are built once, not once per worker.
pytestmark = pytest.mark.xdist_group("model")

# The quality comparison is measured on this district: 20,000 people is the smallest size
# at which nine months of test disputes (~3,700, ~230 escalated) make AUC, precision at 5%
# and a 10-bin calibration error stable enough to compare; at 8,000-12,000 people the
# test window holds 40-140 escalations and the ECE alone varies by +-0.01 between seeds.
# The district is not the committed sample (seed 7). At this size the model's lead over
# the logistic regression is within the bootstrap noise (AUC +0.003 to +0.019, 95%
# interval about +-0.02), so the test asserts what held with a margin on every seed tried
# at 20,000 people (11, 13, 17, 23; 2026-12-01): the model is not significantly worse than
# the logistic regression (upper ends of the paired intervals +0.025 to +0.093), is
# significantly ahead of the checklist at the alert budget (lower ends +0.012 to +0.061),
# ranks well above chance (AUC lower ends 0.710-0.752) and is calibrated out of time:
# ECE 0.014-0.020 and a mean prediction within 0.012 of the observed rate. The ECE bound
# here is 0.03, not the 0.02 target: at this size the test window's ECE moves by +-0.01
# between seeds; `benchmarks/quality.py --persons 40000` measures the targets themselves.
PERSONS, DISTRICT_SEED = 20000, 13
CUTOFF = pd.Timestamp("2024-07-01")
HORIZON = 90


@pytest.fixture(scope="module")
def ds():
    return generate_district(PERSONS, seed=DISTRICT_SEED, pseudonym_key=KEY)


@pytest.fixture(scope="module")
def model(ds) -> RiskModel:
    return train(ds, cutoff=CUTOFF, horizon_days=HORIZON, seed=0)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    model.save(out)
    return out


@pytest.fixture(scope="module")
def test_points(ds):
    """Disputes reported after the cutoff, at report time, with labels observed."""
    return report_points(ds, CUTOFF)


@pytest.fixture(scope="module")
def X(ds, test_points):
    return build_features(ds, test_points.head(400))


# --------------------------------------------------------------------------- the quality bar

@pytest.fixture(scope="module")
def holdout(model, ds):
    return evaluate(model, ds, start=CUTOFF, intervals=True, seed=0)


def test_quality_against_both_baselines_and_calibrated(holdout):
    ev = holdout
    m = ev.metrics
    iv = ev.intervals.set_index(["scorer", "metric"])
    assert ev.period["n"] > 2000 and ev.period["positives"] > 100
    # Not significantly worse than the logistic regression on any ranking metric, and
    # significantly ahead of the checklist at the alert budget (paired 95% intervals).
    for metric in ("roc_auc", "average_precision", "precision@5%"):
        assert iv.loc[("model - logistic_regression", metric), "hi"] > 0, ev.table()
    assert iv.loc[("model - checklist", "precision@5%"), "lo"] > 0, ev.table()
    assert iv.loc[("model - checklist", "average_precision"), "lo"] > 0, ev.table()
    # Well ahead of chance, and calibrated out of time (the map never saw these disputes).
    assert iv.loc[("model", "roc_auc"), "lo"] > 0.70, ev.table()
    assert m.loc["model", "ece"] < 0.03, ev.table()
    assert abs(m.loc["model", "mean_predicted"] - m.loc["model", "base_rate"]) < 0.02, ev.table()
    # Per-group metrics come from fairlearn and cover every attribute.
    assert set(ev.by_group["attribute"]) == {"gender", "age_band", "hukou", "dispute_category"}
    assert ev.frames["gender"].by_group["count"].sum() == ev.period["n"]


def test_intervals_cover_their_estimates_and_shrink_with_data():
    from escalation_risk.model.metrics import bootstrap_intervals

    rng = np.random.default_rng(3)
    out = {}
    for n in (1000, 8000):
        y = (rng.random(n) < 0.1).astype(float)
        good = y + rng.normal(0, 0.8, n)
        noise = rng.random(n)
        iv = bootstrap_intervals(y, {"model": (1 / (1 + np.exp(-good)), good), "noise": (noise, noise)},
                                 metrics=("roc_auc", "precision@5%"), n_boot=100, seed=0)
        iv = iv.set_index(["scorer", "metric"])
        out[n] = iv
        assert (iv["lo"] <= iv["estimate"]).all() and (iv["estimate"] <= iv["hi"]).all()
        assert iv.loc[("model - noise", "roc_auc"), "lo"] > 0.1          # a real lead is significant
        assert iv.loc[("noise", "roc_auc"), "lo"] < 0.5 < iv.loc[("noise", "roc_auc"), "hi"]
    width = {n: (iv["hi"] - iv["lo"]).loc[("model", "roc_auc")] for n, iv in out.items()}
    assert width[8000] < 0.6 * width[1000]
    # The bootstrap's fast metrics are sklearn's, ties included.
    from sklearn.metrics import average_precision_score, roc_auc_score

    from escalation_risk.model.metrics import _fast_ap, _fast_auc
    s = np.round(good, 1)
    assert _fast_ap(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert _fast_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_holdout_from_train_is_after_the_cutoff_and_untouched(small_district, small_model):
    held = train(small_district, cutoff="2025-01-01", seed=0, holdout=True)
    assert held.version == small_model.version                 # the holdout changes nothing in training
    h = held.manifest["metrics"]["holdout"]
    # The cutoff 2025-01-01 is the end of that day: the holdout starts after it.
    assert pd.Timestamp(h["period"]["start"]) == pd.Timestamp("2025-01-01 23:59:59.999999") and h["period"]["n"] > 100
    ev = held.holdout
    again = evaluate(small_model, small_district)  # from the model's cutoff
    assert ev.metrics.loc["model", "roc_auc"] == pytest.approx(again.metrics.loc["model", "roc_auc"])
    assert ev.period["n"] == again.period["n"]
    assert {"model", "model - logistic_regression", "model - checklist"} <= set(ev.intervals["scorer"])
    assert len(h["intervals"]) == len(ev.intervals)
    with pytest.raises(ValueError, match="before the cutoff"):
        train(small_district, cutoff="2025-01-01", holdout=("2024-06-01", "2025-03-01"))


def _screenings(ds):
    """The district as a data set of screenings: people with a birth year, disputes and
    criminal cases with their category and parties, nothing else (no text, places,
    households, organisations, flags, ties, mediations, calls, complaints or petitions)."""
    inc = ds.incidents[ds.incidents["kind"].isin(["dispute", "criminal_case"])]
    inc = inc[["incident_id", "kind", "category", "occurred_at", "reported_at"]]
    par = ds.incident_parties
    par = par[par["incident_id"].isin(inc["incident_id"]) & (par["party_type"] == "person")]
    return Dataset.from_frames(pseudonymised=True, persons=ds.persons[["person_id", "birth_year"]],
                               places=ds.places.iloc[:0][["place_id", "grid_id"]], incidents=inc,
                               incident_parties=par[["incident_id", "party_id", "party_type", "role"]])


def test_model_degrades_gracefully_without_optional_tables(small_district):
    sc = _screenings(small_district)
    m = train(sc, cutoff="2025-01-01", seed=0, holdout=True)
    X = build_features(sc, report_points(sc, "2025-01-01"))
    assert X[FEATURE_NAMES].shape[1] == len(FEATURE_NAMES)
    p = m.predict_proba(X)
    assert np.isfinite(p).all() and len(np.unique(p)) > 20
    # What such data still carry: ages, criminal history by recency, the parties' past disputes.
    used = set(pd.DataFrame(m.manifest["importance"]).query("mean_abs_shap > 0")["feature"])
    assert {"age_min", "hist_dispute_all_sum"} & used, used
    assert any(f.startswith(("hist_crime", "hist_violent")) or f == "hist_days_since_offence" for f in used), used
    for absent in ("text_threat", "place_incidents_90d", "hh_coresidents", "flag_prior_violence", "mediations"):
        assert X[absent].nunique(dropna=False) <= 1, absent      # the absent tables give constants, not errors
    assert m.holdout.metrics.loc["model", "roc_auc"] > 0.55


# --------------------------------------------------------------------------- temporal design

def test_no_label_leakage_across_the_folds(model, ds):
    horizon = pd.Timedelta(days=HORIZON)
    known = ds.cut(CUTOFF)
    pts = example_points(known, every_days=None, max_rescores=0, until=CUTOFF)
    start = known.incidents["reported_at"].min()
    labelled, folds, periods = _folds(pts, cutoff=CUTOFF, start=start, horizon=horizon, validation_months=6,
                                      folds=3)
    assert (pts.loc[labelled, "as_of"] + horizon <= CUTOFF).all()      # every label observed by the cutoff
    windows = []
    for tr, wi in folds:
        assert tr.sum() > 1000 and wi.sum() > 200 and not (tr & wi).any()
        assert (pts.loc[tr, "as_of"] + horizon <= pts.loc[wi, "as_of"].min()).all()  # labels end before the window
        windows.append(wi)
    assert not (windows[0] & windows[1]).any() and not (windows[1] & windows[2]).any()
    assert sum(w.sum() for w in windows) == ((pts["as_of"] >= periods["validation_as_of"][0]) & labelled).sum()
    # The final booster learns from every labelled example, the windows included.
    t = model.manifest["training"]
    assert t["n_train"] > t["n_validation"] and len(t["periods"]["folds"]) == 3
    assert pd.Timestamp(t["periods"]["train_as_of"][1]) + horizon == CUTOFF
    assert t["chosen"] in range(len(t["search"])) and t["best_iteration"] == t["search"][t["chosen"]]["n_trees"]


def test_rescoring_points_stay_inside_the_open_period(ds):
    pts = example_points(ds, every_days=30, max_rescores=3, until="2025-06-30")
    closed = ds.incidents.set_index("incident_id").loc[pts["dispute_id"], "closed_at"].to_numpy()
    rep = ds.incidents.set_index("incident_id").loc[pts["dispute_id"], "reported_at"].to_numpy()
    later = pts["as_of"].to_numpy() > rep
    assert later.any()
    assert np.all(pd.isna(closed[later]) | (pts["as_of"].to_numpy()[later] < closed[later]))


# --------------------------------------------------------------------------- calibration

def test_calibrators_are_plain_numbers_and_monotone():
    rng = np.random.default_rng(0)
    raw = rng.normal(-2.5, 1.2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.8 * raw + 0.3)))).astype(int)
    for method in ("platt", "isotonic", "auto"):
        cal = fit_calibrator(raw, y, method=method, seed=0)
        assert json.loads(json.dumps(cal)) == cal
        p = apply_calibrator(np.sort(raw), cal)
        assert np.all(np.diff(p) >= 0) and abs(p.mean() - y.mean()) < 0.01
    platt = fit_calibrator(raw, y, method="platt")
    assert abs(platt["a"] - 0.8) < 0.15 and abs(platt["b"] - 0.3) < 0.3


# --------------------------------------------------------------------------- contributions and reasons

def test_contributions_sum_to_raw_score(model, X):
    C = model.contributions(X)
    # The model's columns: every feature but the families behind the families_off setting.
    off = set(REGISTRY.excluded(list(FAMILIES_OFF)))
    assert list(C.columns) == [n for n in FEATURE_NAMES if n not in off] + ["bias"]
    np.testing.assert_allclose(C.sum(axis=1).to_numpy(), model.raw_score(X), atol=1e-6)


def test_reasons_are_positive_and_readable(model, X):
    top = X.iloc[np.argsort(-model.predict_proba(X))[:20]]
    for lang in ("en", "zh"):
        rs = model.reasons(top, top=3, lang=lang)
        assert len(rs) == 20 and all(1 <= len(r) <= 3 for r in rs)
        for row in rs:
            contribs = [r["contribution"] for r in row]
            assert all(c > 0 for c in contribs) and contribs == sorted(contribs, reverse=True)
            for r in row:
                assert r["feature"] in REGISTRY and r["text"] == r[lang]
                assert r["en"] and r["zh"] and "{v}" not in r["en"] and "{v}" not in r["zh"]


def test_global_importance(model, X):
    imp = model.importance(X)
    assert sorted(imp["feature"]) == sorted(model.feature_names)
    assert imp["mean_abs_shap"].is_monotonic_decreasing and imp["mean_abs_shap"].iloc[0] > 0


def test_backtest_retrains_the_same_model_deterministically(ds, model):
    # backtest trains afresh with the same data, cutoff and seed: the booster (hashed
    # into the version) and the metrics must come out identical.
    bt = backtest(ds, [CUTOFF])
    assert list(bt["scorer"]) == ["model", "logistic_regression", "checklist"]
    assert (bt["model_version"] == model.version).all() and (bt["cutoff"] == CUTOFF).all()
    ev = evaluate(model, ds, start=CUTOFF)
    assert bt.set_index("scorer").loc[list(ev.metrics.index), "roc_auc"].tolist() == ev.metrics["roc_auc"].tolist()


def test_score_open_disputes(model, ds):
    when = pd.Timestamp("2024-09-15")
    s = model.score(ds, when)
    assert list(s.columns) == ["dispute_id", "as_of", "probability", "level", "trend", "delta", "reasons",
                               "reasons_zh", "reason_features", "plan"]
    inc = ds.incidents.set_index("incident_id").loc[s["dispute_id"]]
    assert (inc["kind"] == "dispute").all() and (inc["reported_at"] <= when).all()
    assert (inc["closed_at"].isna() | (inc["closed_at"] > when)).all()
    alerted = s["level"] != "blue"
    assert alerted.any() and (s.loc[alerted, "reasons"].str.len() > 0).all()
    assert (s.loc[~alerted, "reasons"].str.len() == 0).all()
    assert (s.loc[~alerted, "plan"] == "routine_follow_up").all()
    assert ((s["probability"] > 0) & (s["probability"] < 1)).all()
    # The trend compares with earlier scores.
    hist = s[["dispute_id", "probability"]].assign(probability=s["probability"] - 0.1)
    again = model.score(ds, s[["dispute_id", "as_of"]].head(50), history=hist, reasons_for="all")
    assert (again["trend"] == "rising").all() and (again["reasons"].str.len() > 0).all()


# --------------------------------------------------------------------------- artifacts

def test_save_load_round_trip_gives_identical_scores(model, saved, X, ds):
    loaded = load_model(saved)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.contributions(X).to_numpy(), model.contributions(X).to_numpy())
    assert loaded.thresholds == model.thresholds and loaded.version == model.version
    pts = report_points(ds, "2024-08-01", "2024-08-10")
    pd.testing.assert_frame_equal(loaded.score(ds, pts), model.score(ds, pts))
    m = json.loads((saved / "manifest.json").read_text())
    for key in ("features", "labels", "thresholds", "metrics", "training_data", "cutoff", "seed",
                "library_version", "lightgbm_version", "created_at", "files"):
        assert key in m
    assert set(m["metrics"]["validation"]["scorers"]) == {"model", "logistic_regression", "checklist"}


def _copy(saved, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(saved, d)
    return d


def test_tampered_model_file_is_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    raw = bytearray((d / "model.txt").read_bytes())
    i = raw.index(b"leaf_value=") + len("leaf_value=")
    raw[i] = ord("9") if raw[i] != ord("9") else ord("8")
    (d / "model.txt").write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="model.txt"):
        load_model(d)


def test_tampered_manifest_is_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    text = (d / "manifest.json").read_text()
    m = json.loads(text)
    red = json.dumps(m["thresholds"]["red"])
    (d / "manifest.json").write_text(text.replace(red, json.dumps(m["thresholds"]["red"] * 2), 1))
    with pytest.raises(ModelLoadError, match="manifest.json"):
        load_model(d)
    (d / "manifest.json").write_text(text[:-20])  # truncated: not JSON
    with pytest.raises(ModelLoadError, match="manifest.json"):
        load_model(d)


def test_foreign_and_incompatible_directories_are_refused(saved, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "model.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="manifest.json"):
        load_model(empty)
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"name": "someone else's model"}))
    with pytest.raises(ModelLoadError, match="not an escalation-risk"):
        load_model(other)
    # A model from another minor version, re-sealed so that only the version differs.
    d = _copy(saved, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["library_version"] = "0.99.0"
    m["manifest_sha256"] = artifacts._content_digest(m)
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelLoadError, match="not compatible"):
        load_model(d)
    assert issubclass(ModelLoadError, ValueError)


# --------------------------------------------------------------------------- card and command line

def test_model_card(model, tmp_path):
    path = write_model_card(model, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert (tmp_path / "calibration.png").stat().st_size > 1000
    assert "No automatic decisions" in text and "logistic_regression" in text and "checklist" in text
    assert "## Per-group metrics" in text and "## Limitations" in text


def test_cli_evaluate(ds, saved, tmp_path):
    data = ds.write(tmp_path / "data")
    runner = CliRunner()
    ok = runner.invoke(cli, ["evaluate", str(data), "--model", str(saved), "--start", "2024-07-01",
                             "--end", "2024-10-01"])
    assert ok.exit_code == 0, ok.output
    assert "roc_auc" in ok.output and "checklist" in ok.output
    bad = _copy(saved, tmp_path)
    (bad / "calibrator.json").write_text("{}")
    failed = runner.invoke(cli, ["evaluate", str(data), "--model", str(bad)])
    assert failed.exit_code == 1 and "calibrator.json" in failed.output


def test_a_custom_lexicon_trains_saves_and_scores(small_district, tmp_path):
    import json
    from importlib import resources

    from escalation_risk import Scorer
    from escalation_risk.features import feature_names, load_lexicon

    raw = json.loads(resources.files("escalation_risk").joinpath("lexicon/signals.json").read_text("utf-8"))
    del raw["drinking"], raw["_labels"]["drinking"]
    raw["money"] = ["欠", "工资", "wage", "debt"]
    (tmp_path / "lex.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    lex = load_lexicon(str(tmp_path / "lex.json"))
    m = train(small_district, cutoff="2025-01-01", seed=0, lexicon=lex, config={"param_grid": []})
    off = set(REGISTRY.excluded(list(FAMILIES_OFF)))
    assert m.feature_names == [n for n in feature_names(lex) if n not in off] and "text_money" in m.feature_names
    assert "text_drinking" not in m.feature_names
    m.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.lexicon == lex
    pts = report_points(small_district, "2025-02-01", "2025-02-10")
    pd.testing.assert_frame_equal(loaded.score(small_district, pts), m.score(small_district, pts))
    X = build_features(small_district, pts, lexicon=lex)
    assert X["text_money"].sum() > 0
    # The online scorer computes the same columns with the model's lexicon.
    d = pts["dispute_id"].iloc[0]
    inc, par, med = (t[t["incident_id"] == d] for t in (small_district.incidents, small_district.incident_parties,
                                                         small_district.mediations))
    a = Scorer(loaded, small_district).score_dispute(inc.iloc[0].to_dict(), par.to_dict("records"),
                                                     mediations=med.to_dict("records"), as_of=pts["as_of"].iloc[0])
    assert a.probability == pytest.approx(float(loaded.predict_proba(X.iloc[[0]])[0]))


def test_cli_train_reports_the_held_out_test_or_says_why_not(small_district, tmp_path):
    data = small_district.write(tmp_path / "data")
    runner = CliRunner()
    ok = runner.invoke(cli, ["train", str(data), "--cutoff", "2025-01-01", "--out", str(tmp_path / "m")])
    assert ok.exit_code == 0, ok.output
    assert "held-out after the cutoff, disputes at report time" in ok.output and "95% bootstrap" in ok.output
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Held-out test (after the cutoff)" in card and "first reported after the cutoff" in card
    # Training on everything (the cutoff at the data's end, or after it: the production call)
    # works; the held-out test is skipped and the reason said on stderr and in the card.
    end = str(small_district.incidents["reported_at"].max().date())
    for cutoff in (end, "2030-01-01"):
        late = runner.invoke(cli, ["train", str(data), "--cutoff", cutoff, "--out", str(tmp_path / cutoff)])
        assert late.exit_code == 0, late.output
        assert "no held-out test: the cutoff" in late.output and "at or after the data's last record" in late.output
        card = (tmp_path / cutoff / "MODEL_CARD.md").read_text(encoding="utf-8")
        assert "**No held-out figure**" in card and "at or after the data's last record" in card
        assert f"saved to {tmp_path / cutoff}" in late.output
