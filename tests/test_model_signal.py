"""Issue 29's model-side settings: the literature's monotone direction on prior harm, a
variant with its own settings in the shared ablation build, and the train command building
the held-out features once for both fairness comparisons."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

import escalation_risk as er
from escalation_risk.features import build_features
from escalation_risk.model import report_points
from escalation_risk.model.training import MONOTONE_INCREASING, _lgb_params


def test_monotone_history_constrains_prior_harm_counts_only():
    names = ["hist_violent_suspect_all_max", "hist_police_call_30d_sum", "hist_days_since_offence",
             "hist_dispute_all_sum", "age_min", "hist_crime_suspect_365d_max"]
    p = _lgb_params({"num_leaves": 7}, {"monotone_history": True, "lambda_l2": 3.0}, names)
    assert p["monotone_constraints"] == [1, 1, 0, 0, 0, 1] and "monotone_history" not in p
    assert p["lambda_l2"] == 3.0 and p["num_leaves"] == 7
    assert "monotone_constraints" not in _lgb_params({}, {"num_leaves": 7}, names)
    assert all(m.endswith("_") for m in MONOTONE_INCREASING)  # a prefix never matches a longer family name


def test_a_monotone_set_never_lowers_the_score_for_more_prior_violence(small_district):
    cfg = {"param_grid": [{"num_leaves": 15, "min_data_in_leaf": 20, "lambda_l2": 1.0, "monotone_history": True}],
           "linear": "none"}
    m = er.train(small_district, cutoff="2025-01-01", seed=0, config=cfg)
    assert m.manifest["training"]["search"][0]["params"]["monotone_history"] is True
    cons = dict(zip(m.feature_names, m.manifest["training"]["lightgbm_params"]["monotone_constraints"]))
    assert cons["hist_violent_suspect_all_max"] == 1 and cons["hist_days_since_last"] == 0
    X = build_features(small_district, report_points(small_district, "2025-01-01", "2025-04-01").head(200))
    cols = [c for c, v in cons.items() if v == 1]
    for c in cols:
        more = X.copy()
        more[c] = more[c].fillna(0) + 3
        less_missing = X.copy()
        less_missing[c] = less_missing[c].fillna(0)
        assert (m.raw_score(more) >= m.raw_score(less_missing) - 1e-12).all(), c


def test_a_variant_with_its_own_settings_is_what_train_gives(small_district):
    from escalation_risk.model.training import train_variants
    cfg = {"param_grid": [], "linear": "none"}
    own = {"param_grid": [{"num_leaves": 3, "min_data_in_leaf": 50}]}
    got = train_variants(small_district, {"plain": [], "own": {"exclude": ["gender"], "config": own}},
                         cutoff="2025-01-01", seed=0, config=cfg)
    alone = er.train(small_district, cutoff="2025-01-01", seed=0, config={**cfg, **own}, exclude=["gender"])
    assert got["own"].booster.model_to_string() == alone.booster.model_to_string()
    assert got["own"].manifest["training"]["search"][0]["params"] == own["param_grid"][0]
    assert got["plain"].manifest["training"]["search"][0]["params"] == {}


def test_train_cli_builds_the_held_out_features_once_for_both_comparisons(small_district, tmp_path, monkeypatch):
    import escalation_risk.features as features
    from escalation_risk.cli import main as cli
    calls = []
    real = features.build_features

    def counted(*a, **k) -> pd.DataFrame:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(features, "build_features", counted)
    data = small_district.write(tmp_path / "data")
    out = CliRunner().invoke(cli, ["train", str(data), "--cutoff", "2025-01-01", "--out", str(tmp_path / "m"),
                                   "--exclude", "gender,hukou,age", "--equalise-fpr", "hukou"])
    assert out.exit_code == 0, out.output
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "The same training with and without the personal attributes" in card
    assert "## Equalised false-positive rates (hukou)" in card and "Held-out disputes" in card
    # The command's own builds: the held-out features once (the default model has no text
    # model, so the full model reads the same matrix); before, three.
    assert len(calls) == 1


def test_a_slower_parameter_set_gets_rounds_and_patience_in_proportion():
    from escalation_risk.model.training import DEFAULT_CONFIG, LGB_PARAMS, _rounds
    base = dict(LGB_PARAMS)
    cfg = {**DEFAULT_CONFIG, "num_boost_round": 600, "early_stopping_rounds": 50}
    assert _rounds({**base}, base, cfg) == (600, 50)
    assert _rounds({**base, "learning_rate": base["learning_rate"] / 2}, base, cfg) == (1200, 100)
    assert _rounds({**base, "learning_rate": base["learning_rate"] * 2}, base, cfg) == (600, 50)  # never fewer
    slow_everywhere = {**base, "learning_rate": 0.01}  # lgb_params changing every set's rate: as configured
    assert _rounds(dict(slow_everywhere), slow_everywhere, cfg) == (600, 50)


def test_the_search_records_whether_the_cap_or_early_stopping_ended_each_fold(small_district):
    cfg = {"param_grid": [{"num_leaves": 3}, {"num_leaves": 3, "learning_rate": 0.015}], "linear": "none",
           "num_boost_round": 40, "early_stopping_rounds": 5}
    m = er.train(small_district, cutoff="2025-01-01", seed=0, config=cfg)
    plain, slow = m.manifest["training"]["search"]
    assert plain["max_rounds"] == 40 and slow["max_rounds"] == 80
    for row in (plain, slow):
        assert all(r <= row["max_rounds"] for r in row["fold_rounds"])
        # A fold early stopping ended ran its patience past its best round.
        patience = 5 * row["max_rounds"] // 40
        assert all(r == row["max_rounds"] or r == b + patience
                   for r, b in zip(row["fold_rounds"], row["fold_best_iterations"]))
