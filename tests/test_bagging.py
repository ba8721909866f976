"""Bagged boosters stored as one booster, and re-scores spread over a dispute's open life."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from conftest import KEY

from escalation_risk.features import build_features
from escalation_risk.model import example_points, report_points
from escalation_risk.model.bagging import _tree_outputs, average_boosters, fit_bag, search_bag
from escalation_risk.synth import generate_district


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(4000, 5)), columns=list("abcde"))
    X["g"] = pd.Categorical(rng.choice(["x", "y", "z"], len(X)))
    logit = 1.2 * X["a"] - 0.8 * X["b"] * (X["g"] == "y") - 2.5
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).to_numpy().astype(int)
    return X, y


PARAMS = {"objective": "binary", "verbosity": -1, "num_leaves": 7, "bagging_fraction": 0.7, "bagging_freq": 1,
          "feature_fraction": 0.6, "deterministic": True, "num_threads": 1, "force_col_wise": True}


def test_one_booster_scores_and_explains_as_the_mean_of_the_bag(data):
    X, y = data
    d = lgb.Dataset(X, y, categorical_feature=["g"], free_raw_data=False)
    bag = [lgb.train({**PARAMS, "seed": j}, d, num_boost_round=25) for j in range(3)]
    raws = np.array([b.predict(X, raw_score=True) for b in bag])
    assert np.ptp(raws, axis=0).max() > 0.05  # the seeds' subsamples give different boosters
    one = average_boosters(bag)
    assert one.num_trees() == 75
    np.testing.assert_allclose(one.predict(X, raw_score=True), raws.mean(axis=0), atol=1e-12)
    contrib = np.mean([b.predict(X, pred_contrib=True) for b in bag], axis=0)
    np.testing.assert_allclose(one.predict(X, pred_contrib=True), contrib, atol=1e-12)
    # Stored and read back as text (the model directory's form), it scores the same.
    again = lgb.Booster(model_str=one.model_to_string())
    assert again.model_to_string() == one.model_to_string()
    np.testing.assert_array_equal(again.predict(X, raw_score=True), one.predict(X, raw_score=True))
    assert average_boosters(bag[:1]) is bag[0]


def test_tree_outputs_add_up_to_the_raw_score(data):
    X, y = data
    b = lgb.train({**PARAMS, "seed": 1}, lgb.Dataset(X, y, categorical_feature=["g"]), num_boost_round=20)
    out = _tree_outputs(b, X, 20)
    np.testing.assert_allclose(out.sum(axis=0), b.predict(X, raw_score=True), atol=1e-12)
    np.testing.assert_allclose(np.cumsum(out, axis=0)[6], b.predict(X, raw_score=True, num_iteration=7), atol=1e-12)


def test_the_bag_chooses_its_trees_by_the_windows_and_repeats_itself(data):
    X, y = data
    folds = [(np.arange(len(X)) < 2000, (np.arange(len(X)) >= 2000) & (np.arange(len(X)) < 3000)),
             (np.arange(len(X)) < 3000, np.arange(len(X)) >= 3000)]

    def run(k):
        trs = [lgb.Dataset(X[tr], y[tr], categorical_feature=["g"], free_raw_data=False) for tr, _ in folds]
        wins = [(lgb.Dataset(X[wi], y[wi], reference=d), X[wi], y[wi]) for d, (_, wi) in zip(trs, folds)]
        return search_bag({**PARAMS, "learning_rate": 0.05}, trs, wins, k=k, seed=0, rounds=300, early_stopping=30)

    n, ll, raws = run(4)
    n2, ll2, raws2 = run(4)
    assert (n, ll) == (n2, ll2) and all(np.array_equal(a, b) for a, b in zip(raws, raws2))
    # The chosen number is where the mean's window log-loss is lowest: the raw scores returned give it.
    yw = np.concatenate([y[wi] for _, wi in folds])
    p = 1 / (1 + np.exp(-np.concatenate(raws)))
    assert 1 < n < 300 and np.isfinite(ll) and 0 < ll < np.log(2)
    fold_ll = [-np.mean(y[wi] * np.log(1 / (1 + np.exp(-r))) + (1 - y[wi]) * np.log(1 - 1 / (1 + np.exp(-r))))
               for r, (_, wi) in zip(raws, folds)]
    assert abs(np.mean(fold_ll) - ll) < 1e-9 and len(p) == len(yw)
    one = fit_bag(PARAMS, lgb.Dataset(X, y, categorical_feature=["g"]), k=3, seed=5, n_trees=10)
    assert one.num_trees() == 30


@pytest.fixture(scope="module")
def district():
    return generate_district(3000, seed=5, pseudonym_key=KEY)


def test_spread_rescores_fall_inside_their_period_while_open(district):
    ds = district
    fixed = example_points(ds, every_days=30, max_rescores=4, until="2025-01-01")
    spread = example_points(ds, every_days=30, max_rescores=4, until="2025-01-01", phase="spread")
    inc = ds.incidents.set_index("incident_id")
    rep = inc.loc[spread["dispute_id"], "reported_at"].to_numpy()
    closed = inc.loc[spread["dispute_id"], "closed_at"].to_numpy()
    age = (spread["as_of"].to_numpy() - rep) / np.timedelta64(1, "D")
    later = age > 0
    assert (age >= 0).all() and age.max() < 4 * 30
    assert np.all(pd.isna(closed[later]) | (spread["as_of"].to_numpy()[later] < closed[later]))
    # Every report time is there, as with the fixed phase; the re-scores cover the days between
    # whole periods, and no dispute has more than one re-score per period.
    assert set(map(tuple, fixed[fixed.groupby("dispute_id").cumcount() == 0].to_numpy())) <= set(
        map(tuple, spread.to_numpy()))
    assert np.histogram(age[later] % 30, bins=3, range=(0, 30))[0].min() > 0.2 * later.sum() / 3
    period = np.ceil(age[later] / 30)
    assert not pd.DataFrame({"d": spread["dispute_id"].to_numpy()[later], "k": period}).duplicated().any()
    # Drawn from a hash, not a random stream: the same call gives the same points.
    again = example_points(ds, every_days=30, max_rescores=4, until="2025-01-01", phase="spread")
    pd.testing.assert_frame_equal(spread, again)
    with pytest.raises(ValueError, match="phase"):
        example_points(ds, every_days=30, max_rescores=4, until="2025-01-01", phase="random")


def test_a_trained_bag_is_one_booster_of_k_times_the_trees_and_saves_as_it_scores(small_district, tmp_path):
    from escalation_risk import train
    from escalation_risk.model import load_model
    cfg = {"bags": 3, "param_grid": [{}], "rescore_every_days": 30, "max_rescores": 2, "rescore_phase": "spread"}
    m = train(small_district, cutoff="2025-01-01", seed=0, config=cfg)
    tr = m.manifest["training"]
    assert tr["search"][0]["bag"]["k"] == 3 and tr["best_iteration"] == tr["search"][0]["bag"]["n_trees"]
    assert m.booster.num_trees() == 3 * tr["best_iteration"]
    assert tr["config"]["rescore_phase"] == "spread"
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    X = build_features(small_district, report_points(small_district, "2025-01-01"))
    np.testing.assert_array_equal(back.predict_proba(X), m.predict_proba(X))
    # The same inputs give the same bag.
    again = train(small_district, cutoff="2025-01-01", seed=0, config=cfg)
    assert again.booster.model_to_string() == m.booster.model_to_string()
    with pytest.raises(ValueError, match="bags"):
        train(small_district, cutoff="2025-01-01", config={"bags": 0})


def test_a_model_without_a_family_holding_a_category_column_trains_and_scores(small_district):
    # The regression's design once expected every category column: a family with one (place)
    # could not be excluded.
    from escalation_risk import train
    m = train(small_district, cutoff="2025-01-01", seed=0, exclude=["place"], config={"param_grid": [{}]})
    assert "place_type" not in m.feature_names and "place_type" not in m.baselines["logistic_regression"]["categories"]
    X = build_features(small_district, report_points(small_district, "2025-01-01"))
    p = m.predict_proba(X)
    assert np.isfinite(p).all() and 0 < p.mean() < 1
