"""Thresholds equalising the false-positive rate across a group at the alert budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import escalation_risk as er
from escalation_risk.model.fairness import equal_fpr_thresholds, equalised_alerts, equalised_comparison


def _two_groups(seed: int = 0, n: int = 20000, real: bool = True):
    # Group b's disputes score higher than group a's, so one threshold gives b a larger
    # false-positive rate. ``real``: the shift is real risk (b escalates more, the score
    # is right); otherwise it is unrelated to escalation (the score is wrong about b).
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(n) < 0.4, "b", "a")
    shift = np.where(g == "b", 1.0, 0.0)
    risk = rng.normal(0, 1, n) + (shift if real else 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * risk - 4)))).astype(int)
    score = risk + 0.5 * rng.normal(0, 1, n) + (0.0 if real else shift)
    return 1 / (1 + np.exp(-(score - 3))), y, g


def _fpr(alert, y, m):
    return alert[m & (y == 0)].mean()


def test_equal_rates_at_the_budget_and_what_they_cost():
    p, y, g = _two_groups()
    spec = equal_fpr_thresholds(p, y, g, budget=0.05, attribute="toy")
    single = p >= spec["single"]
    a = equalised_alerts(p, g, spec)
    # One threshold: group b's false-positive rate is several times a's.
    assert _fpr(single, y, g == "b") > 2 * _fpr(single, y, g == "a")
    # Equalised: the two rates agree, the budget holds, b's threshold is the higher.
    assert _fpr(a, y, g == "b") == pytest.approx(_fpr(a, y, g == "a"), abs=0.002)
    assert _fpr(a, y, g == "a") == pytest.approx(spec["fpr"], abs=0.002)
    assert a.mean() == pytest.approx(0.05, abs=0.001) and single.mean() == pytest.approx(0.05, abs=0.001)
    assert spec["thresholds"]["b"] > spec["single"] > spec["thresholds"]["a"]
    # The cost: b's higher scores were real risk, so alerts moved to a find fewer escalations.
    tab = equalised_comparison(p, y, g, spec, n_boot=50, seed=1).set_index(["rule", "group"])
    eq, one = ("equalised false-positive rate", "all"), ("one threshold", "all")
    assert tab.loc[eq, "precision"] < tab.loc[one, "precision"] - 0.02
    row = tab.loc[("equalised false-positive rate", "b")]
    assert row["fpr_lo"] <= row["fpr"] <= row["fpr_hi"]
    assert tab.loc[("one threshold", "a"), "n"] == (g == "a").sum()
    # Where the shift was the score's error, equal rates undo it and precision rises: the
    # table shows the change either way rather than assuming a cost.
    p2, y2, g2 = _two_groups(real=False)
    spec2 = equal_fpr_thresholds(p2, y2, g2, budget=0.05)
    tab2 = equalised_comparison(p2, y2, g2, spec2, n_boot=20, seed=1).set_index(["rule", "group"])
    assert tab2.loc[eq, "precision"] > tab2.loc[one, "precision"]


def test_small_and_unseen_groups_keep_the_single_threshold():
    p, y, g = _two_groups(seed=3, n=5000)
    g = g.astype(object)
    g[:10] = "tiny"
    spec = equal_fpr_thresholds(p, y, g, budget=0.05, min_negatives=20)
    assert spec["groups_kept_single"] == ["tiny"] and spec["thresholds"]["tiny"] == spec["single"]
    unseen = equalised_alerts(np.array([spec["single"], spec["single"] - 1e-9]), np.array(["new", "new"]), spec)
    assert unseen.tolist() == [True, False]
    with pytest.raises(ValueError, match="budget"):
        equal_fpr_thresholds(p, y, g, budget=1.5)


def test_train_with_equalised_thresholds(small_district, tmp_path):
    from escalation_risk.features import build_features
    from escalation_risk.model import report_points
    from escalation_risk.model_card import write_model_card
    m = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": [], "equalise_fpr": "hukou"})
    spec = m.manifest["equalised_fpr"]
    assert spec["attribute"] == "hukou" and set(spec["thresholds"]) <= {"a migrant party", "local parties only"}
    val = pd.DataFrame(spec["validation"]).set_index(["rule", "group"])
    eq = val.xs("equalised false-positive rate")
    groups = [k for k in eq.index if k != "all" and k not in spec["groups_kept_single"]]
    if len(groups) == 2:  # where fitted, the rates are equal up to the ties of the scores
        assert abs(eq.loc[groups[0], "fpr"] - eq.loc[groups[1], "fpr"]) < 0.02
    m.save(tmp_path / "m")
    back = er.load_model(tmp_path / "m")
    X = build_features(small_district, report_points(small_district, "2025-01-01", "2025-03-01"))
    np.testing.assert_array_equal(back.equalised_alerts(X), m.equalised_alerts(X))
    card = write_model_card(back, tmp_path / "m").read_text(encoding="utf-8")
    assert "## Equalised false-positive rates (hukou)" in card and "equalised false-positive rate" in card
    with pytest.raises(ValueError, match="equalise_fpr"):
        er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": [], "equalise_fpr": "religion"})
    plain = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": []})
    with pytest.raises(ValueError, match="no equalised thresholds"):
        plain.equalised_alerts(X)
