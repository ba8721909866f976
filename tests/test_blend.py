"""The linear part beside the trees: weights fitted out of time, scores and reasons that add up."""

from __future__ import annotations

import numpy as np
import pytest

import escalation_risk as er
from escalation_risk.features import build_features
from escalation_risk.model import report_points
from escalation_risk.model.baselines import _logistic_proba, logistic_terms
from escalation_risk.model.blend import _logit, fit_blend


def test_fit_blend_keeps_the_linear_model_only_when_it_adds():
    rng = np.random.default_rng(0)
    n = 6000
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(a + b - 3)))).astype(int)
    # The trees saw a, the linear model b: together they are better, both weights positive.
    both = fit_blend(a + 0.3 * rng.normal(size=n), b + 0.3 * rng.normal(size=n), y, method="auto")
    assert both["chosen"] and both["w_trees"] > 0 and both["w_linear"] > 0
    assert both["cv"]["blend"] < both["cv"]["trees"]
    # A linear model of noise: auto keeps the trees alone.
    noise = fit_blend(a + b, rng.normal(size=n), y, method="auto")
    assert not noise["chosen"]
    with pytest.raises(ValueError, match="linear"):
        fit_blend(a, b, y, method="stack")


def test_blended_model_scores_explains_and_round_trips(small_district, tmp_path):
    m = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": [], "linear": "blend"})
    lin = m.manifest["linear"]
    assert m.linear == lin and lin["w_linear"] > 0
    X = build_features(small_district, report_points(small_district, "2025-01-01", "2025-03-01"))
    spec = m.baselines["logistic_regression"]
    M = m._matrix(X)
    terms = logistic_terms(M, m.feature_names, spec)
    np.testing.assert_allclose(terms.sum(axis=1) + spec["intercept"], _logit(_logistic_proba(X, spec)), atol=1e-9)
    trees = m.booster.predict(M, raw_score=True)
    raw = m.raw_score(X)
    np.testing.assert_allclose(raw, lin["w_trees"] * trees + lin["w_linear"] * _logit(_logistic_proba(X, spec))
                               + lin["intercept"], atol=1e-9)
    # Reasons read contributions that still add up to the score.
    np.testing.assert_allclose(m.contributions(X).sum(axis=1).to_numpy(), raw, atol=1e-8)
    m.save(tmp_path / "m")
    back = er.load_model(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_proba(X), m.predict_proba(X))
    assert back.reasons(X.head(5)) == m.reasons(X.head(5))
    from escalation_risk.model_card import write_model_card
    card = write_model_card(back, tmp_path / "m").read_text(encoding="utf-8")
    assert f"{lin['w_linear']:.3f} x the logistic regression's" in card
    # Without the linear part the same training gives the trees alone, another version.
    plain = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": [], "linear": "none"})
    assert plain.linear is None and plain.version != m.version
    assert "**Linear part:** none" in write_model_card(plain, tmp_path / "p").read_text(encoding="utf-8")
    np.testing.assert_allclose(plain.raw_score(X), plain.booster.predict(plain._matrix(X), raw_score=True))


def test_online_scores_and_reasons_agree_with_batch_for_a_blended_model(small_district):
    """The Scorer's one-row path (a matrix from feature columns) adds the same linear part."""
    from test_signal_features import assert_online_equals_batch
    m = er.train(small_district, cutoff="2025-01-01", seed=0, config={"param_grid": [], "linear": "blend"})
    assert m.linear
    assert_online_equals_batch(m, small_district, n=8)
