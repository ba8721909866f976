"""The one paired bootstrap (model.metrics) behind the held-out intervals and the fairness tables."""

import numpy as np
import pytest

from escalation_risk.model.calibration import cv_folds
from escalation_risk.model.metrics import paired_bootstrap, resamples


def test_resamples_draw_whole_groups_and_follow_the_seed():
    groups = np.repeat(np.array(["a", "b", "c", "d", "e"], dtype=object), [1, 2, 3, 4, 5])
    rows_of = {g: set(np.flatnonzero(groups == g)) for g in set(groups)}
    for idx in resamples(len(groups), 50, seed=1, groups=groups):
        counts = np.bincount(idx, minlength=len(groups))
        for rows in rows_of.values():  # a group's rows are drawn together, as often as each other
            assert len({counts[r] for r in rows}) == 1
        assert len(idx) == sum(counts[min(rows)] * len(rows) for rows in rows_of.values())
    same = resamples(100, 5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(same, resamples(100, 5, seed=3)))
    assert not all(np.array_equal(a, b) for a, b in zip(same, resamples(100, 5, seed=4)))


def test_a_difference_made_inside_the_figures_is_paired():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    z = x + rng.normal(scale=0.05, size=400)  # nearly x: their difference is small and steady

    def figures(idx):
        return {"x": float(x[idx].mean()), "z": float(z[idx].mean()),
                "z - x": float(z[idx].mean() - x[idx].mean())}

    out = paired_bootstrap(figures, 400, n_boot=200, seed=0)
    assert out["x"][0] == pytest.approx(x.mean()) and out["x"][1] < x.mean() < out["x"][2]
    width = {k: hi - lo for k, (_, lo, hi) in out.items()}
    assert width["z - x"] < width["x"] / 5  # unpaired, the difference would be wider than either


def test_figures_undefined_in_a_resample_are_left_out_and_never_defined_is_nan():
    y = np.zeros(200)
    y[:3] = 1  # three positives: many resamples hold none

    def figures(idx):
        yb = y[idx]
        return {"rate_of_positives": (float(yb[yb == 1].mean()) if (yb == 1).any() else np.nan, float(yb.mean())),
                "never": (np.nan, 0.0)}

    out = paired_bootstrap(figures, 200, n_boot=100, seed=2)
    est, lo, hi = out["rate_of_positives"]
    assert lo[0] == hi[0] == 1.0  # NaN draws left out, not counted as 0
    assert lo[1] <= est[1] <= hi[1]
    assert np.isnan(out["never"][1][0]) and np.isnan(out["never"][2][0]) and out["never"][1][1] == 0.0


def test_cv_folds_are_stratified_and_fewer_when_an_outcome_is_rare():
    y = np.r_[np.ones(3, int), np.zeros(50, int)]
    folds = cv_folds(y, 5, seed=0)
    assert len(folds) == 3  # three positives: three folds, one each
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(y)))
    assert all(y[te].sum() == 1 for _, te in folds)
    assert cv_folds(np.r_[1, np.zeros(20, int)], 5, seed=0) == []
