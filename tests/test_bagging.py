"""Bagged boosters stored as one booster, and re-scores spread over a dispute's open life."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY

from escalation_risk.features import build_features
from escalation_risk.model import example_points, report_points
from escalation_risk.model.bagging import _tree_outputs, average_boosters, fit_bag, member_seeds, search_bag
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
    # The chosen number is where the mean's window log-loss is lowest: the raw scores returned give it,
    # and the members' mean one tree before or after it scores the windows worse.
    assert 1 < n < 300 and np.isfinite(ll) and 0 < ll < np.log(2)

    def fold_ll(rs):
        return np.mean([-np.mean(y[wi] * np.log(1 / (1 + np.exp(-r))) + (1 - y[wi]) * np.log(1 - 1 / (1 + np.exp(-r))))
                        for r, (_, wi) in zip(rs, folds)])
    assert abs(fold_ll(raws) - ll) < 1e-9
    members = [[lgb.train({**PARAMS, "learning_rate": 0.05, "seed": s},
                          lgb.Dataset(X[tr], y[tr], categorical_feature=["g"]), num_boost_round=n + 1)
                for s in member_seeds(0, 4)] for tr, _ in folds]

    def mean_at(m):
        return [np.mean([b.predict(X[wi], raw_score=True, num_iteration=m) for b in bs], axis=0)
                for bs, (_, wi) in zip(members, folds)]
    np.testing.assert_allclose(np.concatenate(mean_at(n)), np.concatenate(raws), atol=1e-12)
    assert fold_ll(mean_at(n - 1)) > ll and fold_ll(mean_at(n + 1)) > ll
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
    bag = tr["search"][0]["bag"]
    # The bag's own search, not the single booster's copied: its window log-loss is its mean's, and
    # the refit has k times its number of trees.
    assert bag["k"] == 3 and bag["window_log_loss"] != tr["search"][0]["window_log_loss"]
    assert m.booster.num_trees() == 3 * bag["n_trees"]
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


@pytest.fixture(scope="module")
def early_fold():
    """Three rolling folds whose first window's labels are noise: its boosters' best iteration is
    far below the other folds', and so below the number of trees the fold average chooses."""
    rng = np.random.default_rng(3)
    n = 6000
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=list("abcde"))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.2 * X["a"] - 0.8 * X["b"] - 2.5)))).to_numpy().astype(int)
    i = np.arange(n)
    folds = [(i < 2000, (i >= 2000) & (i < 3000)), (i < 4000, (i >= 4000) & (i < 5000)), (i < 5000, i >= 5000)]
    y[folds[0][1]] = rng.random(1000) < 0.08
    return X, y, folds


def test_each_fold_scores_its_window_with_the_chosen_number_of_trees(early_fold):
    # An early-stopped booster is cut to its own best iteration unless it is kept for training:
    # the fold whose best is earliest then scored its window with fewer trees than chosen.
    from escalation_risk.model.training import _config, _lgb_dataset, _search
    X, y, folds = early_fold
    base = {**PARAMS, "metric": "binary_logloss", "learning_rate": 0.05, "seed": 0}
    as_of = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(X)), "h"))
    _, n_trees, table, raws = _search(X, y, as_of, folds, [{}], base, _config({}))
    assert min(table[0]["fold_best_iterations"]) < n_trees
    for (tr, wi), raw in zip(folds, raws[0]):
        full = lgb.train(base, _lgb_dataset(X[tr], y[tr], None), num_boost_round=n_trees)
        np.testing.assert_allclose(raw, full.predict(X[wi], raw_score=True), atol=1e-12)


def test_the_bag_may_use_more_trees_than_its_earliest_stopping_member(early_fold):
    X, y, folds = early_fold
    params = {**PARAMS, "metric": "binary_logloss", "learning_rate": 0.05}
    trs = [lgb.Dataset(X[tr], y[tr], free_raw_data=False) for tr, _ in folds]
    wins = [(lgb.Dataset(X[wi], y[wi], reference=d), X[wi], y[wi]) for d, (_, wi) in zip(trs, folds)]
    n, _, raws = search_bag(params, trs, wins, k=3, seed=2, rounds=300, early_stopping=30)
    best = [lgb.train({**params, "seed": s}, d, num_boost_round=300, valid_sets=[w],
                      callbacks=[lgb.early_stopping(30, verbose=False)]).best_iteration
            for d, (w, _, _) in zip(trs, wins) for s in member_seeds(2, 3)]
    assert n > min(best)
    for d, (_, M, _), raw in zip(trs, wins, raws):
        full = [lgb.train({**params, "seed": s}, d, num_boost_round=n) for s in member_seeds(2, 3)]
        np.testing.assert_allclose(raw, np.mean([b.predict(M, raw_score=True) for b in full], axis=0), atol=1e-12)


def test_train_cli_reaches_the_bag_and_the_spread_phase_and_the_card_states_them(small_district, tmp_path):
    import json

    from escalation_risk.cli import main as cli
    data = small_district.write(tmp_path / "data")
    out = CliRunner().invoke(cli, ["train", str(data), "--cutoff", "2025-01-01", "--out", str(tmp_path / "m"),
                                   "--rescore-every", "30", "--max-rescores", "2", "--rescore-phase", "spread",
                                   "--bags", "2"])
    assert out.exit_code == 0, out.output
    tr = json.loads((tmp_path / "m" / "manifest.json").read_text(encoding="utf-8"))["training"]
    assert tr["config"]["bags"] == 2 and tr["config"]["rescore_phase"] == "spread"
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text(encoding="utf-8")
    n = tr["best_iteration"]
    assert "a bag of **k = 2** boosters" in card and f"**{2 * n}** trees in all" in card
    assert "re-scores at a **spread** phase" in card and "once in every 30-day period while open" in card
    assert "every 30 days while open" not in card
    bad = CliRunner().invoke(cli, ["train", str(data), "--cutoff", "2025-01-01", "--out", str(tmp_path / "x"),
                                   "--rescore-phase", "spread"])
    assert bad.exit_code != 0 and "--rescore-every" in bad.output


def test_neighbouring_training_seeds_share_no_bag_member(data):
    seeds = [member_seeds(s, 5) for s in range(4)]
    assert all(len(set(a) & set(b)) == 0 for i, a in enumerate(seeds) for b in seeds[i + 1:])
    assert member_seeds(7, 1) == [7] and len(set(member_seeds(2, 5))) == 5
    X, y = data
    d = lgb.Dataset(X, y, categorical_feature=["g"], free_raw_data=False)
    one = fit_bag(PARAMS, d, k=2, seed=1, n_trees=5)
    want = np.mean([lgb.train({**PARAMS, "seed": s}, d, num_boost_round=5).predict(X, raw_score=True)
                    for s in member_seeds(1, 2)], axis=0)
    np.testing.assert_allclose(one.predict(X, raw_score=True), want, atol=1e-12)


def test_tree_outputs_from_a_later_tree_are_the_same_rows_of_all(data):
    X, y = data
    b = lgb.train({**PARAMS, "seed": 1}, lgb.Dataset(X, y, categorical_feature=["g"]), num_boost_round=30)
    np.testing.assert_array_equal(_tree_outputs(b, X, 30, 12), _tree_outputs(b, X, 30)[12:])
